"""Send CloudEvents over NATS from Python: publish, request-reply and JetStream publish.

::

    from cerouter.client import Client

    async with await Client.connect("nats://127.0.0.1:4222") as client:
        await client.publish(event, "events.orders")                     # core, fire and forget
        reply = await client.request(event, "inventory.reserve", timeout=2)  # -> CloudEvent
        ack = await client.publish_js(event, "orders.created")           # stored, deduplicated

Everything goes through :mod:`cerouter.binding`, in structured mode unless ``mode`` says binary.
Errors: :class:`~cerouter.errors.DeliveryError` when nobody took the event (no responders,
timeout, no stream, JetStream refused it), :class:`RemoteError` (a ``DeliveryError``) when a
responder answered with an ``io.cerouter.error`` event, :class:`~cerouter.errors.BindingError`
when an event cannot be encoded or a reply is not a CloudEvent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import nats.errors
import nats.js.errors
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client as NatsClient
from nats.js.api import PubAck

from cerouter.binding import Mode, NatsMessage, from_message
from cerouter.delivery.error_event import ERROR_EVENT_TYPE
from cerouter.errors import DeliveryError
from cerouter.nats.connection import DEFAULT_URL
from cerouter.nats.local_auth import local_token
from cerouter.worker import connect_worker
from cerouter.worker.outlets import encode_event

__all__ = ["ERROR_EVENT_TYPE", "Client", "RemoteError", "connect", "dedupe_id"]

MSG_ID_HEADER = "Nats-Msg-Id"


class RemoteError(DeliveryError):
    """A responder answered a request with an ``io.cerouter.error`` event (kept as ``event``)."""

    def __init__(self, message: str, event: CloudEvent) -> None:
        super().__init__(message)
        self.event = event


def dedupe_id(event: CloudEvent) -> str:
    """The JetStream ``Nats-Msg-Id`` of an event: a digest of its identity, ``source`` + ``id``.

    CloudEvents says ``source`` and ``id`` together identify an event, so a producer that
    re-sends the same event (after a timeout, a crash) gets it stored once within the stream's
    duplicate window.
    """
    identity = f"{event.get_source()}\n{event.get_id()}".encode()
    return hashlib.sha256(identity).hexdigest()[:32]


class Client:
    """A CloudEvents client on a nats-py connection.

    Wrap a connection you own (``Client(nc)``), or let :meth:`connect` open one that
    :meth:`close` then drains and closes. ``mode`` is the default content mode of what it sends.
    """

    def __init__(self, nc: NatsClient, *, mode: Mode = Mode.STRUCTURED) -> None:
        self.nc = nc
        self.mode = mode
        self._owned = False

    @classmethod
    async def connect(
        cls,
        urls: str | Sequence[str] = DEFAULT_URL,
        *,
        name: str = "cerouter-client",
        mode: Mode = Mode.STRUCTURED,
        connect_timeout: float = 2.0,
        token: str | None = None,
        store_dir: str | os.PathLike[str] | None = None,
    ) -> Client:
        """Open a connection (it reconnects once up).

        ``token`` authenticates. Without one, a server on this machine (loopback URLs) gets the
        token of cerouter's own server kept in ``store_dir`` (default ``$CEROUTER_STORE_DIR``,
        else ``.cerouter/jetstream``, where ``cerouter run`` keeps it), if there is one: run
        from the directory of ``cerouter run`` and it just works.

        Raises :class:`~cerouter.errors.ServerError` when no server answers or it refuses.
        """
        servers = [urls] if isinstance(urls, str) else list(urls)
        if token is None:
            token = local_token(servers, store_dir)
        nc = await connect_worker(servers, name=name, connect_timeout=connect_timeout, token=token)
        client = cls(nc, mode=mode)
        client._owned = True
        return client

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush what was published; close the connection if this client opened it."""
        if self.nc.is_closed:
            return
        if self._owned:
            await self.nc.drain()
        else:
            await self.flush()

    async def flush(self, timeout: int = 5) -> None:  # noqa: ASYNC109 - nats-py's flush timeout
        """Wait until the server has received everything published so far."""
        try:
            await self.nc.flush(timeout=timeout)
        except nats.errors.Error as exc:
            raise DeliveryError(f"flush failed: {_detail(exc)}") from None

    # ------------------------------------------------------------------ core

    async def publish(
        self,
        event: CloudEvent,
        subject: str,
        *,
        mode: Mode | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish on core NATS (at-most-once; call :meth:`flush` to know the server has it).

        ``headers`` are added to the binding's (they cannot replace ``ce-`` headers).
        """
        message = encode_event(event, mode or self.mode)
        try:
            await self.nc.publish(subject, message.payload, headers=_merge(message, headers))
        except nats.errors.Error as exc:
            raise DeliveryError(f"publish to {subject!r} failed: {_detail(exc)}") from None

    async def request(
        self,
        event: CloudEvent,
        subject: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the NATS request timeout, not a deadline
        mode: Mode | None = None,
        headers: Mapping[str, str] | None = None,
        raise_on_error: bool = True,
    ) -> CloudEvent:
        """Send ``event`` as a NATS request and return the reply, read as a CloudEvent.

        An ``io.cerouter.error`` reply raises :class:`RemoteError`, unless ``raise_on_error`` is
        false (then it is returned like any reply).
        """
        message = encode_event(event, mode or self.mode)
        try:
            reply = await self.nc.request(
                subject, message.payload, timeout=timeout, headers=_merge(message, headers)
            )
        except nats.errors.NoRespondersError:
            raise DeliveryError(f"request to {subject!r}: no responders") from None
        except nats.errors.TimeoutError:
            raise DeliveryError(f"request to {subject!r}: no reply within {timeout}s") from None
        except nats.errors.Error as exc:
            raise DeliveryError(f"request to {subject!r} failed: {_detail(exc)}") from None
        answer = from_message(reply.headers, reply.data)
        if raise_on_error and answer.get_type() == ERROR_EVENT_TYPE:
            data = answer.get_data()
            reason = data.get("error") if isinstance(data, dict) else None
            raise RemoteError(f"request to {subject!r} failed remotely: {reason or data!r}", answer)
        return answer

    # ------------------------------------------------------------------ JetStream

    async def publish_js(
        self,
        event: CloudEvent,
        subject: str,
        *,
        mode: Mode | None = None,
        msg_id: str | None = None,
        stream: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the JetStream ack timeout
    ) -> PubAck:
        """Store ``event`` in the stream capturing ``subject`` and wait for JetStream's ack.

        ``msg_id`` (default :func:`dedupe_id`) is the ``Nats-Msg-Id``: a re-send within the
        stream's duplicate window is acknowledged with ``duplicate=True`` and not stored again.
        ``stream`` makes the publish fail unless that stream captures the subject.
        """
        message = encode_event(event, mode or self.mode)
        headers = _merge(message, {MSG_ID_HEADER: msg_id or dedupe_id(event)})
        try:
            return await self.nc.jetstream().publish(
                subject, message.payload, timeout=timeout, stream=stream, headers=headers
            )
        except nats.js.errors.NoStreamResponseError:
            raise DeliveryError(f"no JetStream stream captures {subject!r}") from None
        except nats.errors.Error as exc:
            raise DeliveryError(
                f"JetStream publish to {subject!r} failed: {_detail(exc)}"
            ) from None

    async def publish_js_many(
        self,
        items: Iterable[tuple[CloudEvent, str]],
        *,
        mode: Mode | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - bounds the wait for the acks
    ) -> list[PubAck]:
        """Store many ``(event, subject)`` pairs, pipelined: send all, then collect the acks.

        Awaiting each ack in turn caps a client near 4k events/s; pipelining reaches ~50k
        (DESIGN.md section 3). Every event carries its :func:`dedupe_id`, so when this raises
        :class:`DeliveryError` (some were not acknowledged) re-sending the whole batch is safe.
        """
        js = self.nc.jetstream()
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for event, subject in items:
                message = encode_event(event, mode or self.mode)
                headers = _merge(message, {MSG_ID_HEADER: dedupe_id(event)})
                futures.append(await js.publish_async(subject, message.payload, headers=headers))
            done = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout)
        except (TimeoutError, nats.errors.Error) as exc:
            for future in futures:
                future.cancel()
            raise DeliveryError(f"JetStream batch publish failed: {_detail(exc)}") from None
        failed = [r for r in done if isinstance(r, BaseException)]
        if failed:
            raise DeliveryError(
                f"JetStream batch publish: {len(failed)} of {len(done)} events not stored "
                f"(first: {_detail(failed[0])})"
            )
        return [r for r in done if isinstance(r, PubAck)]


def _merge(message: NatsMessage, extra: Mapping[str, str] | None) -> dict[str, str] | None:
    if not extra:
        return message.headers or None
    merged: dict[str, str] = dict(extra)
    merged.update(message.headers)  # the binding's headers win: they are the event
    return merged


def _detail(exc: BaseException) -> str:
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return "no stream captures the subject"
    return str(exc) or type(exc).__name__


async def connect(urls: str | Sequence[str] = DEFAULT_URL, **kwargs: Any) -> Client:
    """Shorthand for :meth:`Client.connect`."""
    return await Client.connect(urls, **kwargs)
