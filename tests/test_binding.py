"""The NATS protocol binding: spec vectors, mode detection, strict decoding, round trips."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from cerouter.binding import (
    DataKind,
    DecodedEvent,
    Mode,
    decode,
    decode_header_value,
    encode,
    encode_header_value,
    from_message,
    to_binary,
    to_structured,
)
from cerouter.errors import BindingError, CerouterError

BASE = {
    "specversion": "1.0",
    "id": "1234-1234-1234",
    "source": "/mycontext",
    "type": "com.example.x",
}


def binary_headers(**extra: str) -> dict[str, str]:
    return {f"ce-{k}": v for k, v in {**BASE, **extra}.items()}


# --------------------------------------------------------------------------- percent-encoding


def test_spec_percent_encoding_example() -> None:
    assert encode_header_value("Euro € 😀") == "Euro%20%E2%82%AC%20%F0%9F%98%80"
    assert decode_header_value("ce-x", "Euro%20%E2%82%AC%20%F0%9F%98%80") == "Euro € 😀"


@pytest.mark.parametrize(
    ("char", "encoded"), [(" ", "%20"), ('"', "%22"), ("%", "%25"), ("\x7f", "%7F")]
)
def test_characters_that_must_be_encoded(char: str, encoded: str) -> None:
    assert encode_header_value(f"a{char}b") == f"a{encoded}b"


def test_printable_ascii_is_left_alone() -> None:
    printable = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
    assert encode_header_value(printable) == printable


def test_overlong_utf8_is_rejected() -> None:
    with pytest.raises(BindingError, match="not valid UTF-8"):
        decode_header_value("ce-x", "%C0%A0")


def test_encoded_surrogate_is_rejected() -> None:
    with pytest.raises(BindingError):
        decode_header_value("ce-x", "%ED%A0%80")


def test_lower_case_hex_is_accepted() -> None:
    assert decode_header_value("ce-x", "Euro%20%e2%82%ac") == "Euro €"


def test_unnecessary_encoding_is_accepted() -> None:
    assert decode_header_value("ce-x", "%41%42C") == "ABC"


def test_double_quoted_values_are_unquoted_first() -> None:
    assert decode_header_value("ce-x", '"hello world"') == "hello world"
    assert decode_header_value("ce-x", '"say \\"hi\\""') == 'say "hi"'
    assert decode_header_value("ce-x", '"a%20b"') == "a b"


def test_whitespace_around_values_is_optional() -> None:
    assert decode_header_value("ce-x", "  abc\t") == "abc"


# --------------------------------------------------------------------------- mode detection


def test_structured_with_content_type() -> None:
    payload = orjson.dumps({**BASE, "data": {"a": 1}})
    event = decode({"Content-Type": "application/cloudevents+json; charset=utf-8"}, payload)
    assert event.mode is Mode.STRUCTURED
    assert event.attributes == BASE
    assert event.json_data() == (True, {"a": 1})


def test_content_type_is_matched_case_insensitively() -> None:
    payload = orjson.dumps(BASE)
    assert decode({"content-type": "Application/CloudEvents+JSON"}, payload).mode is Mode.STRUCTURED


def test_structured_without_any_header_is_accepted() -> None:
    # sdk-go and sdk-rust send structured events with no headers at all.
    event = decode(None, orjson.dumps({**BASE, "data": "x"}))
    assert event.mode is Mode.STRUCTURED
    assert event.data == "x"


def test_binary_detected_by_ce_specversion() -> None:
    event = decode(binary_headers(datacontenttype="application/json"), b'{"a":1}')
    assert event.mode is Mode.BINARY
    assert event.attributes["datacontenttype"] == "application/json"
    assert event.json_data() == (True, {"a": 1})


def test_binary_header_prefix_is_case_insensitive() -> None:
    headers = {"Ce-Specversion": "1.0", "CE-ID": "1", "ce-Source": "/s", "ce-type": "t"}
    event = decode(headers, b"")
    assert event.attributes == {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def test_binary_duplicate_attribute_is_rejected() -> None:
    headers = {**binary_headers(), "Ce-Id": "other"}
    with pytest.raises(BindingError, match="'id' appears twice"):
        decode(headers, b"")


def test_binary_plain_content_type_is_read_as_datacontenttype() -> None:
    event = decode({**binary_headers(), "Content-Type": "text/plain"}, b"hi")
    assert event.attributes["datacontenttype"] == "text/plain"


def test_binary_empty_body_means_no_data() -> None:
    assert decode(binary_headers(), b"").data_kind is DataKind.ABSENT


def test_batch_content_type_is_rejected() -> None:
    with pytest.raises(BindingError, match="no batch mode"):
        decode({"Content-Type": "application/cloudevents-batch+json"}, b"[]")


def test_non_json_event_format_is_rejected() -> None:
    with pytest.raises(BindingError, match="only the JSON event format"):
        decode({"Content-Type": "application/cloudevents+avro"}, b"\x00")


def test_binding_error_is_a_cerouter_error() -> None:
    assert issubclass(BindingError, CerouterError)


# --------------------------------------------------------------------------- structured strictness


def test_null_attributes_are_absent() -> None:
    event = decode(None, orjson.dumps({**BASE, "subject": None, "unsetextension": None}))
    assert "subject" not in event.attributes
    assert "unsetextension" not in event.attributes


def test_data_and_data_base64_are_exclusive() -> None:
    with pytest.raises(BindingError, match="mutually exclusive"):
        decode(None, orjson.dumps({**BASE, "data": 1, "data_base64": "AA=="}))


def test_data_base64_decodes_to_bytes() -> None:
    event = decode(
        None, orjson.dumps({**BASE, "data_base64": base64.b64encode(b"\x00\x01").decode()})
    )
    assert (event.data_kind, event.data) == (DataKind.BYTES, b"\x00\x01")


def test_invalid_base64_is_rejected() -> None:
    with pytest.raises(BindingError, match="not valid base64"):
        decode(None, orjson.dumps({**BASE, "data_base64": "***"}))


def test_payload_must_be_a_json_object() -> None:
    with pytest.raises(BindingError, match="must be a JSON object"):
        decode(None, b"[1,2]")


def test_non_json_payload_says_what_is_wrong() -> None:
    with pytest.raises(BindingError, match="not a JSON event"):
        decode(None, b"hello")


def test_attribute_with_object_value_is_rejected() -> None:
    with pytest.raises(BindingError, match="attribute 'ext'"):
        decode(None, orjson.dumps({**BASE, "ext": {"a": 1}}))


def test_json_string_data_is_kept_quoted_in_binary_mode() -> None:
    # JSON format 3.2: a string with no datacontenttype is JSON, so the body keeps its quotes.
    event = decode(None, orjson.dumps({**BASE, "data": "I'm just a string"}))
    message = encode(event, Mode.BINARY)
    assert message.payload == b'"I\'m just a string"'
    assert message.headers["ce-datacontenttype"] == "application/json"


def test_data_base64_without_type_has_no_content_type_in_binary_mode() -> None:
    event = decode(None, orjson.dumps({**BASE, "data_base64": "AAE="}))
    message = encode(event, Mode.BINARY)
    assert "ce-datacontenttype" not in message.headers
    assert message.payload == b"\x00\x01"


def test_binary_to_structured_without_type_uses_data_base64() -> None:
    event = decode(binary_headers(), b"\x00\xff")
    body = orjson.loads(encode(event, Mode.STRUCTURED).payload)
    assert body["data_base64"] == base64.b64encode(b"\x00\xff").decode()
    assert "data" not in body


def test_binary_to_structured_with_bad_json_body_is_an_error() -> None:
    event = decode(binary_headers(datacontenttype="application/json"), b"{nope")
    with pytest.raises(BindingError, match="not valid JSON"):
        encode(event, Mode.STRUCTURED)


# --------------------------------------------------------------------------- wire format


def test_binary_wire_format_matches_the_spec_example() -> None:
    event = CloudEvent(
        {
            "specversion": "1.0",
            "type": "com.example.someevent",
            "time": datetime(2018, 4, 5, 3, 56, 24, tzinfo=UTC),
            "id": "1234-1234-1234",
            "source": "/mycontext/subcontext",
            "datacontenttype": "application/json",
        },
        {"a": "b"},
    )
    message = to_binary(event)
    assert message.headers == {
        "ce-specversion": "1.0",
        "ce-id": "1234-1234-1234",
        "ce-source": "/mycontext/subcontext",
        "ce-type": "com.example.someevent",
        "ce-time": "2018-04-05T03:56:24Z",
        "ce-datacontenttype": "application/json",
    }
    assert "Content-Type" not in message.headers
    assert orjson.loads(message.payload) == {"a": "b"}


def test_structured_wire_format() -> None:
    event = CloudEvent({**BASE, "time": datetime(2020, 1, 1, tzinfo=UTC)}, {"a": 1})
    message = to_structured(event)
    assert message.headers == {"Content-Type": "application/cloudevents+json"}
    assert orjson.loads(message.payload) == {
        **BASE,
        "time": "2020-01-01T00:00:00Z",
        "data": {"a": 1},
    }


def test_from_message_gives_an_sdk_event_with_aware_time() -> None:
    headers = binary_headers(time="2018-04-05T05:56:24+02:00", datacontenttype="text/plain")
    event = from_message(headers, b"hello")
    assert event.get_time() == datetime(2018, 4, 5, 3, 56, 24, tzinfo=UTC)
    assert event.get_time().utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]
    assert event.get_data() == "hello"


def test_from_message_does_not_invent_a_time() -> None:
    assert from_message(binary_headers(), b"").get_time() is None


def test_from_message_rejects_a_bad_time() -> None:
    with pytest.raises(BindingError, match="time"):
        from_message(binary_headers(time="yesterday"), b"")


# --------------------------------------------------------------------------- property tests

names = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12).filter(
    lambda n: n not in {"data", "specversion", "id", "source", "type", "time", "datacontenttype"}
)
# Any Unicode a CloudEvents String may hold: no control characters, no surrogates.
text_values = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC) | offsets
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def sdk_events(draw: st.DrawFn) -> CloudEvent:
    attrs: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(text_values),
        "source": draw(text_values),
        "type": draw(text_values),
        "time": draw(times),
    }
    for name in draw(st.lists(names, max_size=4, unique=True)):
        attrs[name] = draw(text_values)
    kind = draw(st.sampled_from(["none", "json", "text", "bytes"]))
    data: Any = None
    if kind == "json":
        data = draw(json_values.filter(lambda v: v is not None))
        attrs["datacontenttype"] = draw(
            st.sampled_from(["application/json", "application/vnd.x+json"])
        )
    elif kind == "text":
        data = draw(st.text(min_size=1, max_size=40))
        attrs["datacontenttype"] = "text/plain; charset=utf-8"
    elif kind == "bytes":
        data = draw(st.binary(min_size=1, max_size=40))
        attrs["datacontenttype"] = "application/octet-stream"
    return CloudEvent(attrs, data)


@settings(max_examples=300)
@given(sdk_events(), st.sampled_from([to_binary, to_structured]))
def test_round_trip_through_either_mode(event: CloudEvent, write: Any) -> None:
    message = write(event)
    for value in message.headers.values():
        assert all(0x21 <= ord(c) <= 0x7E for c in value), value
    back = from_message(message.headers, message.payload)
    assert back.get_attributes() == event.get_attributes()
    assert back.get_time().utcoffset() == event.get_time().utcoffset()  # type: ignore[union-attr]
    assert back.get_data() == event.get_data()


@settings(max_examples=200)
@given(sdk_events())
def test_mode_conversion_preserves_the_event(event: CloudEvent) -> None:
    structured = to_structured(event)
    as_binary = encode(decode(structured.headers, structured.payload), Mode.BINARY)
    back = decode(as_binary.headers, as_binary.payload)
    assert back.mode is Mode.BINARY
    again = encode(back, Mode.STRUCTURED)
    assert from_message(again.headers, again.payload).get_attributes() == event.get_attributes()


@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=50))
def test_header_encoding_round_trips_any_text(value: str) -> None:
    encoded = encode_header_value(value)
    assert all(0x21 <= ord(c) <= 0x7E for c in encoded)
    assert decode_header_value("ce-x", encoded) == value


def test_decoded_event_is_immutable() -> None:
    event = DecodedEvent(dict(BASE), Mode.BINARY)
    with pytest.raises(AttributeError):
        event.mode = Mode.STRUCTURED  # type: ignore[misc]
