"""Binding errors quote producer values briefly: they go to logs and dead letters."""

from __future__ import annotations

import orjson
import pytest

from cerouter.binding import Mode, decode, decode_header_value, encode, encode_header_value
from cerouter.errors import BindingError

# A message names what is wrong and shows a bounded excerpt: the header name, the attribute
# name, at most 64 characters of each value; a few hundred characters in all.
MAX_MESSAGE = 400
BIG = "x" * 100_000


def _structured(**attributes: object) -> bytes:
    required = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    return orjson.dumps({**required, **attributes})


def _nested_attribute(depth: int) -> bytes:
    """An event whose ``ext`` attribute nests arrays ``depth`` deep (more than orjson writes)."""
    return _structured(ext="X").replace(b'"X"', b"[" * depth + b'"leaf"' + b"]" * depth)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(_nested_attribute(1000), id="array-1000-deep"),
        pytest.param(_structured(ext={"k": BIG}), id="object-holding-100KB"),
        pytest.param(_structured(ext=[BIG] * 10), id="array-of-100KB-strings"),
        pytest.param(_structured(ext=1.5e300), id="float"),
        pytest.param(_structured(**{BIG: [1]}), id="100KB-attribute-name"),
    ],
)
def test_an_attribute_of_no_cloudevents_type_is_named_not_printed(payload: bytes) -> None:
    with pytest.raises(BindingError, match="is not a CloudEvents type") as caught:
        decode(None, payload)
    assert len(str(caught.value)) < MAX_MESSAGE


def test_a_nested_attribute_says_what_it_is() -> None:
    with pytest.raises(BindingError) as caught:
        decode(None, _nested_attribute(1000))
    assert str(caught.value) == (
        "attribute 'ext': an array of 1 item is not a CloudEvents type (string, integer or boolean)"
    )


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        pytest.param(
            {"Content-Type": "application/cloudevents-batch+json" + BIG}, "batch", id="batch"
        ),
        pytest.param(
            {"Content-Type": "application/cloudevents+xml" + BIG}, "JSON event format", id="xml"
        ),
        pytest.param(
            {"ce-specversion": "1.0", "ce-id": "%C0%A0" + BIG, "ce-source": "/s", "ce-type": "t"},
            "not valid UTF-8",
            id="percent-encoding",
        ),
        pytest.param(
            {"ce-specversion": "1.0", "ce-id": "1", "ce-" + BIG: "1", "CE-" + BIG: "2"},
            "appears twice",
            id="duplicate-header",
        ),
    ],
)
def test_header_errors_quote_at_most_an_excerpt(headers: dict[str, str], match: str) -> None:
    with pytest.raises(BindingError, match=match) as caught:
        decode(headers, b"")
    message = str(caught.value)
    assert len(message) < MAX_MESSAGE
    assert "… (100" in message  # the excerpt says how long the value was


def test_a_long_value_is_quoted_with_its_start_and_length() -> None:
    with pytest.raises(BindingError) as caught:
        decode_header_value("ce-id", "%C0%A0" + BIG)
    assert str(caught.value) == (
        "header 'ce-id': percent-encoded bytes are not valid UTF-8: "
        f"'%C0%A0{'x' * 58}'… (100006 characters)"
    )


def test_encoding_errors_quote_at_most_an_excerpt() -> None:
    with pytest.raises(BindingError, match="unpaired surrogate") as caught:
        encode_header_value("\ud800" + BIG)
    assert len(str(caught.value)) < MAX_MESSAGE


def test_data_for_a_text_type_that_is_not_a_string_is_not_printed() -> None:
    payload = _structured(datacontenttype="text/plain" + BIG, data={"k": BIG})
    with pytest.raises(BindingError, match="'data' must be a string") as caught:
        decode(None, payload)
    assert len(str(caught.value)) < MAX_MESSAGE


def test_data_nested_deeper_than_json_writes_fails_to_encode_as_a_binding_error() -> None:
    # orjson reads 1,024 levels but writes 254: switching such an event's mode must fail cleanly
    # (a BindingError is a failed delivery), not with a TypeError out of the dispatcher.
    head = b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": '
    event = decode(None, head + b"[" * 300 + b"]" * 300 + b"}")
    with pytest.raises(BindingError, match="cannot be written as JSON"):
        encode(event, Mode.BINARY)
    with pytest.raises(BindingError, match="cannot be written as JSON"):
        encode(event, Mode.STRUCTURED)
