"""Conflicting duplicates: a different event that reuses a stored event's source and id.

Stream destinations de-duplicate on (source, id, destination) — CloudEvents says source and id
identify an event, and that is what makes redeliveries and producer retries harmless. But a
producer that reuses an id for *different* content would have its event silently acked as a
duplicate. So when JetStream reports a duplicate, the stored message is read back (one direct
get, only for duplicates) and compared with the event: the same event is fine, a different one
is dead-lettered with reason ``conflict``.
"""

from __future__ import annotations

import nats.errors
from nats.js.client import JetStreamContext

from cerouter.binding import DecodedEvent, Mode, decode, encode
from cerouter.delivery.dispatch import Pending
from cerouter.errors import BindingError
from cerouter.pipeline import Rejection
from cerouter.types import Reason, Stage


def _canonical(event: DecodedEvent) -> bytes:
    return encode(event, Mode.STRUCTURED).payload


def duplicates(pending: list[Pending]) -> list[tuple[Pending, str, int]]:
    """The stream deliveries JetStream acknowledged as duplicates: (delivery, stream, seq)."""
    out: list[tuple[Pending, str, int]] = []
    for item in pending:
        future = item.waiter
        if future is None or not future.done() or future.cancelled() or future.exception():
            continue
        ack = future.result()
        if isinstance(ack, dict) and ack.get("duplicate"):
            stream, seq = ack.get("stream"), ack.get("seq")
            if isinstance(stream, str) and isinstance(seq, int):
                out.append((item, stream, seq))
    return out


async def conflicts(
    js: JetStreamContext, event: DecodedEvent, dups: list[tuple[Pending, str, int]]
) -> list[Rejection]:
    """One ``conflict`` rejection per duplicate (see :func:`duplicates`) whose stored event
    differs from ``event``."""
    found: list[Rejection] = []
    mine: bytes | None = None
    for item, stream, seq in dups:
        try:
            stored = await js.get_msg(stream, seq)
        except nats.errors.Error:
            continue  # gone (limits, purge) or unreachable: nothing to compare with
        try:
            theirs = _canonical(decode(stored.headers, stored.data or b""))
        except BindingError:
            theirs = b""
        mine = mine if mine is not None else _canonical(event)
        if theirs != mine:
            found.append(
                Rejection(
                    Reason.CONFLICT,
                    Stage.DELIVERY,
                    f"stream {stream} already holds a different event with source "
                    f"{event.attributes.get('source')!r} and id {event.attributes.get('id')!r} "
                    f"(seq {seq})",
                    route=item.route,
                    destination=item.destination.subject,
                )
            )
    return found
