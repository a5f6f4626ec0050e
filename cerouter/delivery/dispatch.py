"""Destinations: putting a routed event on NATS subjects, JetStream streams, queues and requests.

:meth:`Dispatcher.start` begins every delivery of one event without waiting for any of them, so a
batch of events has all its JetStream publishes in flight at once; :func:`settle` then waits for
the outcomes. When a destination's output mode equals the mode the event arrived in, the original
payload and headers are forwarded untouched; otherwise the event is re-encoded once per mode.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from cerouter.binding import DecodedEvent, Mode, NatsMessage, encode
from cerouter.delivery.error_event import error_event
from cerouter.errors import CerouterError, DeliveryError, TooLargeError
from cerouter.nats import wire
from cerouter.nats.jspub import JetStreamPublisher
from cerouter.pipeline import HOPS_HEADER, Rejection
from cerouter.routing.model import Match, RenderedDestination
from cerouter.tracing import Tracing, without_trace_headers
from cerouter.types import Reason, Stage

MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass(frozen=True, slots=True)
class Pending:
    """One delivery under way: ``waiter`` is ``None`` when the destination already accepted."""

    route: str
    destination: RenderedDestination
    waiter: asyncio.Future[Any] | None


def msg_id(attributes: Mapping[str, object], destination: RenderedDestination) -> str:
    """The JetStream de-duplication id of an event at one destination: (source, id, destination)."""
    digest = hashlib.blake2b(digest_size=16)
    stream = destination.destination.stream or ""
    key = (
        f"{attributes.get('source')}\x00{attributes.get('id')}\x00{stream}\x00{destination.subject}"
    )
    digest.update(key.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


CONTROL_HEADERS = frozenset({"status", "description"})
"""Headers NATS itself uses for status messages (``Status: 503`` is "no responders"): a copy
that carried a producer's would be misread by clients as a status, not as a message."""


def is_control(name: str) -> bool:
    """Whether a header is an instruction to NATS/JetStream rather than part of the message."""
    lowered = name.lower()
    return lowered[:5] == "nats-" or lowered in CONTROL_HEADERS


def forwardable(headers: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of a message's headers without the control ones (``Nats-*``, ``Status``,
    ``Description``).

    ``Nats-*`` headers are instructions to JetStream from the original producer (expected last
    sequence, rollup, TTL, message id); applied to a copy in another stream they make it refuse
    the message, or do something the producer never meant for that stream.
    """
    if not headers:
        return {}
    # is_control, inlined: this runs for every header of every forwarded event.
    control = CONTROL_HEADERS
    return {
        k: v
        for k, v in headers.items()
        if (lowered := k.lower())[:5] != "nats-" and lowered not in control
    }


class Dispatcher:
    """Sends events to their rendered destinations over one NATS connection."""

    def __init__(self, nc: Client, publisher: JetStreamPublisher) -> None:
        self.nc = nc
        self.publisher = publisher

    async def start(
        self,
        event: DecodedEvent,
        matches: tuple[Match, ...],
        *,
        headers: Mapping[str, str] | None,
        payload: bytes,
        hops: int,
        reply: str | None,
        tracing: Tracing | None = None,
        span: Any = None,
        trace: Mapping[str, str] | None = None,
    ) -> list[Pending]:
        """Begin delivering ``event`` to every destination of ``matches``; wait for none.

        With ``tracing``, every delivery has a span of its own (a child of the router's
        ``span``) and every message carries ``trace``, the ``traceparent``/``tracestate``
        headers of ``span``, in place of the producer's.
        """
        encoded: dict[Mode, NatsMessage] = {}
        hop_value = str(hops + 1)
        pending: list[Pending] = []
        if tracing is not None and trace is None:
            trace = tracing.headers_of(span)
        # A trace the sampler left out still propagates, but gets no delivery spans.
        recording = tracing is not None and span.is_recording()
        for match in matches:
            for dest in match.destinations:
                mode = dest.mode or event.mode
                try:
                    if mode is event.mode:
                        out_headers = forwardable(headers)
                        out_payload = payload
                    else:
                        message = encoded.get(mode)
                        if message is None:
                            message = encoded[mode] = encode(event, mode)
                        out_headers = dict(message.headers)
                        out_payload = message.payload
                    out_headers[HOPS_HEADER] = hop_value
                    if trace is not None:
                        without_trace_headers(out_headers)
                        out_headers.update(trace)
                    if recording:
                        assert tracing is not None  # recording spans come from it
                        waiter = await self._traced_send(
                            tracing, span, match.route.name, event, dest, out_headers,
                            out_payload, reply,
                        )  # fmt: skip
                    else:
                        waiter = await self._send(event, dest, out_headers, out_payload, reply)
                except CerouterError as exc:
                    # One destination that cannot even be tried must not stop the others;
                    # it fails like any other delivery (retried, then dead-lettered).
                    waiter = asyncio.get_running_loop().create_future()
                    waiter.set_exception(exc)
                pending.append(Pending(match.route.name, dest, waiter))
        return pending

    async def _traced_send(
        self,
        tracing: Tracing,
        parent: Any,
        route: str,
        event: DecodedEvent,
        dest: RenderedDestination,
        headers: dict[str, str],
        payload: bytes,
        reply: str | None,
    ) -> asyncio.Future[Any] | None:
        spec = dest.destination
        span = tracing.delivery_span(parent, str(spec.subject_template), route)
        try:
            waiter = await self._send(event, dest, headers, payload, reply)
        except BaseException as exc:
            tracing.failed(span, [str(Reason.DELIVERY)], exc)
            span.end()
            raise
        if waiter is None:
            span.end()
            return None

        def ended(future: asyncio.Future[Any]) -> None:
            # The span lasts until the acknowledgement (or the reply) came, or did not.
            if future.cancelled():
                tracing.failed(span, ["cancelled"])
            elif (exc := future.exception()) is not None:
                tracing.failed(span, [str(Reason.DELIVERY)], exc)
            span.end()

        waiter.add_done_callback(ended)
        return waiter

    async def _send(
        self,
        event: DecodedEvent,
        dest: RenderedDestination,
        headers: dict[str, str],
        payload: bytes,
        reply: str | None,
    ) -> asyncio.Future[Any] | None:
        spec = dest.destination
        try:
            if spec.kind == "stream" or (spec.kind == "queue" and spec.durable):
                headers[MSG_ID_HEADER] = msg_id(event.attributes, dest)
                return await self.publisher.publish(
                    dest.subject, payload, headers, stream=spec.stream
                )
            if spec.kind == "request":
                within = spec.timeout or 5.0
                return asyncio.ensure_future(
                    self._request(event, dest.subject, headers, payload, within, reply)
                )
            await wire.publish(self.nc, dest.subject, payload, headers)
        except CerouterError:
            raise
        except Exception as exc:
            raise DeliveryError(f"{spec.describe()}: {exc or type(exc).__name__}") from exc
        return None

    async def _request(
        self,
        event: DecodedEvent,
        subject: str,
        headers: dict[str, str],
        payload: bytes,
        within: float,
        reply: str | None,
    ) -> None:
        wire.check_size(self.nc, headers, payload)
        try:
            response = await self.nc.request(subject, payload, timeout=within, headers=headers)
        except NoRespondersError:
            problem = "no responders"
        except (NatsTimeoutError, TimeoutError):
            problem = f"no reply within {within:g}s"
        else:
            if reply:
                await self.nc.publish(reply, response.data, headers=response.headers)
            return
        if reply:
            message = encode(
                error_event(f"request {subject}: {problem}", event.attributes), Mode.STRUCTURED
            )
            await self.nc.publish(reply, message.payload, headers=message.headers)
        raise DeliveryError(problem)


async def wait_all(pending: list[Pending], ack_within: float) -> None:
    """Wait until every delivery under way finished, or ``ack_within`` seconds passed.

    Requests carry their own timeout, so the wait is stretched to cover the longest of them.
    One wait for a whole batch: no task per delivery.
    """
    waiters = [p.waiter for p in pending if p.waiter is not None]
    if not waiters:
        return
    longest = max((p.destination.destination.timeout or 0.0 for p in pending), default=0.0)
    await asyncio.wait(waiters, timeout=max(ack_within, longest + 1.0))


def failures_of(pending: list[Pending], ack_within: float) -> list[Rejection]:
    """One rejection per delivery that failed, or did not finish (it is cancelled)."""
    failures: list[Rejection] = []
    for item in pending:
        future = item.waiter
        if future is None:
            continue
        reason = Reason.DELIVERY
        if not future.done():
            future.cancel()
            detail = f"no acknowledgement within {ack_within:g}s"
        elif future.cancelled():
            detail = "cancelled"
        elif (exc := future.exception()) is not None:
            detail = str(exc) or type(exc).__name__
            reason = Reason.TOO_LARGE if isinstance(exc, TooLargeError) else Reason.DELIVERY
        else:
            continue
        dest = item.destination
        where = dest.destination.describe()
        if str(dest.destination.subject_template) != dest.subject:
            where += f" -> {dest.subject}"
        failures.append(
            Rejection(
                reason,
                Stage.DELIVERY,
                f"{where}: {detail}",
                route=item.route,
                destination=dest.subject,
            )
        )
    return failures


async def settle(pending: list[Pending], ack_within: float) -> list[Rejection]:
    """Wait for every delivery under way; return one rejection per destination that failed."""
    await wait_all(pending, ack_within)
    return failures_of(pending, ack_within)
