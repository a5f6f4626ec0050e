"""The one dead-letter format: built the same way for router and worker, parsed back by tools."""

from __future__ import annotations

from datetime import UTC, datetime

from cerouter.delivery.deadletter import build_deadletter, header_value, parse_deadletter
from cerouter.pipeline import Rejection
from cerouter.routing.subjects import SubjectTemplate
from cerouter.types import Reason, Stage

TARGET = SubjectTemplate.parse("deadletter.{reason}")
ORIGINAL = {
    "ce-id": "o-1",
    "ce-source": "/shop",
    "Nats-Msg-Id": "abc",
    "Nats-Expected-Stream": "WORK",
    "Nats-TTL": "1s",
    "cerouter-hops": "1",
}
WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_router_letter_keeps_the_original_and_says_why() -> None:
    rejection = Rejection(
        Reason.DELIVERY, Stage.DELIVERY, "stream ORDERS: timeout", route="orders",
        destination="orders.x",
    )  # fmt: skip
    letter = build_deadletter(
        TARGET, rejection, subject="events.shop", headers=ORIGINAL, payload=b"{}",
        attributes={"id": "o-1", "source": "/shop"}, attempt=3, now=WHEN,
    )  # fmt: skip
    assert letter.subject == "deadletter.delivery"
    assert letter.payload == b"{}"
    headers = letter.headers
    assert not any(k.lower().startswith("nats-") and k != "Nats-Msg-Id" for k in headers)
    assert headers["Nats-Msg-Id"] == letter.msg_id != "abc"
    assert {k: v for k, v in headers.items() if k.startswith("cerouter-")} == {
        "cerouter-hops": "1",
        "cerouter-msg-id": "abc",
        "cerouter-deadletter": "delivery",
        "cerouter-stage": "delivery",
        "cerouter-reason": "stream ORDERS: timeout",
        "cerouter-subject": "events.shop",
        "cerouter-route": "orders",
        "cerouter-destination": "orders.x",
        "cerouter-attempt": "3",
        "cerouter-time": "2026-12-01T12:00:00Z",
    }


def test_a_worker_letter_has_a_reason_code_and_its_queue() -> None:
    rejection = Rejection(Reason.HANDLER, Stage.HANDLER, "ValueError: no such customer")
    letter = build_deadletter(
        TARGET, rejection, subject="work.billing", headers=ORIGINAL, payload=b"x", attempt=5,
        queue="billing",
    )  # fmt: skip
    assert letter.subject == "deadletter.handler"
    assert letter.headers["cerouter-deadletter"] == "handler"
    assert letter.headers["cerouter-queue"] == "billing"


def test_parse_reads_back_what_build_wrote() -> None:
    detail = "data/price: -3 is less than 0 — €"
    rejection = Rejection(Reason.SCHEMA, Stage.DATA, detail, route="big € orders")
    letter = build_deadletter(
        TARGET, rejection, subject="events.shop", headers=ORIGINAL, payload=b"{}", attempt=2,
        queue=None, now=WHEN,
    )  # fmt: skip
    record = parse_deadletter(letter.headers, letter.payload, subject=letter.subject)
    assert record.reason is Reason.SCHEMA
    assert record.stage is Stage.DATA
    assert record.detail == detail
    assert record.route == "big € orders"
    assert record.subject == "events.shop"
    assert record.attempt == 2
    assert record.time == WHEN
    assert record.original_msg_id == "abc"
    assert record.payload == b"{}"
    # The original headers, less the JetStream controls that were never copied.
    assert record.headers == {"ce-id": "o-1", "ce-source": "/shop"}


def test_parse_never_raises_on_foreign_or_damaged_headers() -> None:
    record = parse_deadletter({"cerouter-deadletter": "bogus", "cerouter-attempt": "x"}, b"")
    assert (record.reason, record.stage, record.attempt) == (None, None, 1)
    assert parse_deadletter(None, b"raw").payload == b"raw"


def test_the_same_rejection_of_the_same_event_gets_the_same_id() -> None:
    attrs = {"id": "1", "source": "/s"}
    one = Rejection(Reason.SCHEMA, Stage.DATA, "a")
    first = build_deadletter(TARGET, one, subject="s", headers=None, payload=b"1", attributes=attrs)
    again = build_deadletter(TARGET, one, subject="s", headers=None, payload=b"2", attributes=attrs)
    other = Rejection(Reason.ENVELOPE, Stage.ENVELOPE, "a")
    third = build_deadletter(
        TARGET, other, subject="s", headers=None, payload=b"1", attributes=attrs
    )
    assert first.msg_id == again.msg_id != third.msg_id


def test_header_values_are_one_printable_line() -> None:
    assert header_value("bad\r\n  order\tgone") == "bad order gone"
    assert header_value("100%") == "100%25"
    assert len(header_value("x" * 5000)) == 1024
