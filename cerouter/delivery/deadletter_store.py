"""Storing dead letters: one JetStream publish path for the router and the workers.

A dead letter is only stored once JetStream acknowledged it. When no stream captures its
subject (deleted at run time, or a fresh server), the caller's ``recreate`` makes one and the
publish is tried once more, so the first dead letter after such an accident is not lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext, api

from cerouter.delivery.deadletter import DeadLetter
from cerouter.errors import DeliveryError
from cerouter.log import get_logger

log = get_logger("cerouter.deadletter")

Recreate = Callable[[], Awaitable[None]]


async def store_deadletter(
    js: JetStreamContext,
    letter: DeadLetter,
    *,
    stream: str | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - handed to nats-py's JetStream publish
    recreate: Recreate | None = None,
) -> None:
    """Publish ``letter``; raise :class:`DeliveryError` unless JetStream acknowledged it.

    ``stream``, when given, is the stream that must capture it (``Nats-Expected-Stream``).
    """
    for first_try in (True, False):
        try:
            await js.publish(
                letter.subject, letter.payload, timeout=timeout, stream=stream,
                headers=letter.headers,
            )  # fmt: skip
            return
        except nats.js.errors.NoStreamResponseError:
            missing = True
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            # A core subscriber on the subject answers for a missing stream: the publish is
            # then delivered to it and times out instead of failing with "no stream".
            missing = await _no_stream(js, letter.subject)
            if not missing:
                raise _failed(letter, exc) from None
        except nats.errors.Error as exc:  # API error, connection closed
            raise _failed(letter, exc) from None
        if not first_try or recreate is None:
            break
        try:
            await recreate()
        except Exception as exc:  # the caller's provisioning: report, never escape
            raise DeliveryError(
                f"dead-letter stream for {letter.subject!r} is missing and could not be "
                f"recreated: {exc or type(exc).__name__}"
            ) from None
    raise DeliveryError(f"no JetStream stream captures dead-letter subject {letter.subject!r}")


def _failed(letter: DeadLetter, exc: BaseException) -> DeliveryError:
    detail = str(exc) or type(exc).__name__
    return DeliveryError(f"dead-letter publish to {letter.subject!r} failed: {detail}")


async def _no_stream(js: JetStreamContext, subject: str) -> bool:
    try:
        await js.find_stream_name_by_subject(subject)
    except nats.js.errors.NotFoundError:
        return True
    except (nats.errors.Error, TimeoutError):
        return False  # cannot tell: report the original failure
    return False


async def ensure_capture_stream(js: JetStreamContext, subject: str, stream: str) -> str:
    """Return the stream capturing ``subject``, creating ``stream`` (limits retention, capturing
    ``<first token>.>``) when there is none. Another process creating it at the same moment is
    fine: the lookup is repeated after a failed create."""
    try:
        return await js.find_stream_name_by_subject(subject)
    except nats.js.errors.NotFoundError:
        pass
    head, dot, _ = subject.partition(".")
    capture = f"{head}.>" if dot else subject
    config = api.StreamConfig(
        name=stream,
        subjects=[capture],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
    )
    try:
        await js.add_stream(config)
        log.info("dead-letter stream created", stream=stream, subjects=capture)
        return stream
    except nats.js.errors.APIError as exc:
        try:
            return await js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            raise DeliveryError(
                f"cannot create dead-letter stream {stream!r} for {subject!r}: "
                f"{exc.description or exc}"
            ) from None
