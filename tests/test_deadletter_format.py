"""The one dead-letter format: built the same way for router and worker, parsed back by tools."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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


def test_a_redelivered_message_gets_the_same_id_and_every_other_message_its_own() -> None:
    one = Rejection(Reason.SCHEMA, Stage.DATA, "a")
    attrs = {"id": "1", "source": "/s"}  # the same source+id: still different messages

    def letter(identity: str | None, rejection: Rejection = one) -> str:
        return build_deadletter(
            TARGET, rejection, subject="s", headers=None, payload=b"{}", attributes=attrs,
            identity=identity,
        ).msg_id  # fmt: skip

    assert letter("EVENTS:7") == letter("EVENTS:7"), "a redelivery is stored once"
    assert letter("EVENTS:7") != letter("EVENTS:8")
    assert letter("EVENTS:7") != letter("EVENTS:7", Rejection(Reason.ENVELOPE, Stage.ENVELOPE, "a"))
    assert letter(None) != letter(None), "core messages are never collapsed, even identical ones"


def test_headers_jetstream_would_refuse_are_kept_in_an_envelope() -> None:
    odd = {"X(odd)": "1", "ce-id": "o-1", "Big": "x" * 70_000}
    letter = build_deadletter(
        TARGET, Rejection(Reason.BINDING, Stage.BINDING, "not a CloudEvent"), subject="in.x",
        headers=odd, payload=b"\x00raw", identity="EVENTS:1",
    )  # fmt: skip
    assert not any(k in letter.headers for k in odd)
    assert sum(len(k) + len(v) for k, v in letter.headers.items()) < 4096
    record = parse_deadletter(letter.headers, letter.payload)
    assert record.headers == odd
    assert record.payload == b"\x00raw"
    assert record.origin == "EVENTS:1"


def test_status_headers_are_renamed_and_recoverable() -> None:
    letter = build_deadletter(
        TARGET, Rejection(Reason.UNROUTED, Stage.ROUTING, "no route"), subject="in.x",
        headers={"Status": "503", "Description": "no responders", "ce-id": "1"}, payload=b"{}",
    )  # fmt: skip
    assert "Status" not in letter.headers
    assert "Description" not in letter.headers
    record = parse_deadletter(letter.headers, letter.payload)
    assert record.headers == {"Status": "503", "Description": "no responders", "ce-id": "1"}


@pytest.mark.parametrize("headers", [{"ce-id": "1"}, {"X(odd)": "y"}], ids=["plain", "envelope"])
def test_a_letter_over_max_payload_is_truncated_and_says_so(headers: dict[str, str]) -> None:
    payload = b"x" * 1_000_000
    letter = build_deadletter(
        TARGET, Rejection(Reason.UNROUTED, Stage.ROUTING, "no route"), subject="in.x",
        headers=headers, payload=payload, identity="EVENTS:9", max_payload=1_048_576 // 2,
    )  # fmt: skip
    size = sum(len(k) + len(v) + 4 for k, v in letter.headers.items()) + 12 + len(letter.payload)
    assert size <= 1_048_576 // 2
    record = parse_deadletter(letter.headers, letter.payload)
    assert record.truncated == 1_000_000
    assert record.origin == "EVENTS:9"
    assert record.reason is Reason.UNROUTED
    assert payload.startswith(record.payload)
    assert len(record.payload) > 100_000


def test_header_values_are_one_printable_line() -> None:
    assert header_value("bad\r\n  order\tgone") == "bad order gone"
    assert header_value("100%") == "100%25"
    assert len(header_value("x" * 5000)) == 1024
