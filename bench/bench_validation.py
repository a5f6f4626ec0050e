"""Validation benchmark: µs per event for the envelope check and the data validation.

Run: ``.venv/bin/python bench/bench_validation.py [--rounds N] [--min-time SECONDS]``

Every row runs on the example schemas (``schemas/``) and example events (``examples/events/``).
Each row is timed in several rounds, interleaved across rows, and the best and median rounds
are shown, with the ratio to ``orjson.loads`` of the same event's bytes, measured in the same
run: the ratio is what survives a noisy machine. The pure-Python ``jsonschema`` library on the
same valid data is the baseline the fast path is meant to beat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import referencing

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cerouter.binding import Mode, decode, encode  # noqa: E402
from cerouter.validation.envelope import check_envelope  # noqa: E402
from cerouter.validation.registry import SchemaRegistry, SchemasSettings  # noqa: E402
from cerouter.validation.validator import EventValidator  # noqa: E402

EVENTS = ROOT / "examples" / "events"
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def calibrate(fn: Callable[[], object], min_time: float) -> int:
    """How many calls make one round last about ``min_time`` seconds."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 8:
            return max(1, int(number * min_time / elapsed))
        number *= 2


def one_round(fn: Callable[[], object], number: int) -> float:
    """µs per call over ``number`` calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def python_jsonschema_validator(registry: SchemaRegistry, ref: str) -> Any:
    """The pure-Python library on the same schema, its $refs served from the same local files."""
    resources = [
        (s.declared_id, referencing.Resource.from_contents(s.document))
        for s in registry.schemas
        if s.declared_id is not None
    ]
    local = referencing.Registry().with_resources(resources)
    schema = registry.get(ref).document
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=local, format_checker=cls.FORMAT_CHECKER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per row (default 7)")
    parser.add_argument(
        "--min-time", type=float, default=0.1, help="seconds per round and row (default 0.1)"
    )
    args = parser.parse_args()

    registry = SchemaRegistry.load(SchemasSettings(ROOT / "schemas"))
    validator = EventValidator(registry)

    valid_raw = (EVENTS / "order-created.json").read_bytes()
    invalid_raw = (EVENTS / "order-created-invalid.json").read_bytes()
    valid = decode(STRUCTURED, valid_raw)
    invalid = decode(STRUCTURED, invalid_raw)
    message = encode(valid, Mode.BINARY)
    binary = decode(message.headers, message.payload)
    paid = decode(STRUCTURED, (EVENTS / "order-paid.json").read_bytes())
    compiled = registry.get("order-created.json")
    pure = python_jsonschema_validator(registry, "order-created.json")

    # Sanity: the rows measure what their names say.
    assert validator.check(valid).ok
    assert validator.check(binary).ok
    assert validator.check(paid).ok
    assert not validator.check(invalid).ok
    assert check_envelope(valid) == ()
    assert pure.is_valid(valid.data)
    assert not pure.is_valid(invalid.data)

    paid_schema = registry.get("order-paid.json")
    pure_paid = python_jsonschema_validator(registry, "order-paid.json")
    assert pure_paid.is_valid(paid.data)
    rows: list[tuple[str, Callable[[], object]]] = [
        ("orjson.loads of the event (reference)", lambda: orjson.loads(valid_raw)),
        ("binding.decode, structured (for scale)", lambda: decode(STRUCTURED, valid_raw)),
        ("envelope only, valid event", lambda: check_envelope(valid)),
        ("envelope only, invalid event", lambda: check_envelope(invalid)),
        ("order.paid (~8 values):", lambda: None),
        ("  jsonschema-rs is_valid, data only", lambda: paid_schema.is_valid(paid.data)),
        ("  envelope + data, valid", lambda: validator.check(paid)),
        ("  pure-Python jsonschema, data only", lambda: pure_paid.is_valid(paid.data)),
        ("order.created (~25 values, nested):", lambda: None),
        ("  jsonschema-rs is_valid, data only", lambda: compiled.is_valid(valid.data)),
        ("  envelope + data, valid", lambda: validator.check(valid)),
        ("  envelope + data, valid, binary mode *", lambda: validator.check(binary)),
        ("  envelope + data, invalid + errors", lambda: validator.check(invalid)),
        ("  pure-Python jsonschema, data only", lambda: pure.is_valid(valid.data)),
        ("  pure-Python jsonschema, invalid+errors", lambda: list(pure.iter_errors(invalid.data))),
    ]
    print(f"cerouter validation benchmark  (Python {sys.version.split()[0]}, best/median of "
          f"{args.rounds} rounds)")  # fmt: skip
    print(f"order.created event: {len(valid_raw)} bytes, structured mode\n")
    header = f"{'case':44} {'best µs':>9} {'median µs':>10} {'x orjson.loads':>15}"
    print(header)
    print("-" * len(header))
    # Rounds are interleaved across rows, so a burst of machine noise hits every row alike.
    timed = [i for i, (name, _) in enumerate(rows) if not name.endswith(":")]
    numbers = {i: calibrate(rows[i][1], args.min_time) for i in timed}
    samples: dict[int, list[float]] = {i: [] for i in timed}
    for _ in range(args.rounds):
        for i in timed:
            samples[i].append(one_round(rows[i][1], numbers[i]))
    reference = min(samples[timed[0]])
    for i, (name, _) in enumerate(rows):
        if i not in samples:
            print(name)
            continue
        best, median = min(samples[i]), statistics.median(samples[i])
        print(f"{name:44} {best:9.2f} {median:10.2f} {best / reference:15.1f}")
    print("\n* binary mode parses the JSON body inside the data check (lazily, once per event).")
    print("Target: envelope + data for a valid event <= 5 µs.")


if __name__ == "__main__":
    main()
