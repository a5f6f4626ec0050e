"""Fuzz the parsers for as long as asked: the targets of tests/test_fuzz.py, without their limit.

Run: ``.venv/bin/python bench/fuzz.py --minutes 10 [--target decode --target cesql ...]``

The targets (``decode``, ``cesql``, ``parse_config``, ``schema_loader``, ``pipeline``) take turns
in rounds of ``--round`` examples until the time is up, so each gets about the same share. A
target stops at its first failure, which Hypothesis shrinks and prints with the seed that
reproduces it. Prints one line per target (inputs tried, failures) and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_fuzz import TARGETS


def _counted(
    name: str, check: Callable[[Any], None], counts: Counter[str]
) -> Callable[[Any], None]:
    def counted(case: Any) -> None:
        counts[name] += 1
        check(case)

    counted.__name__ = f"fuzz_{name}"
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="how long to fuzz in all")
    parser.add_argument(
        "--target", action="append", choices=list(TARGETS), help="fuzz only these (repeatable)"
    )
    parser.add_argument("--round", type=int, default=500, help="examples per turn of a target")
    args = parser.parse_args()
    names = args.target or list(TARGETS)
    counts: Counter[str] = Counter()
    failures: dict[str, str] = {}
    options = settings(
        max_examples=args.round,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    runs = {
        name: options(given(TARGETS[name][0])(_counted(name, TARGETS[name][1], counts)))
        for name in names
    }
    deadline = time.monotonic() + args.minutes * 60
    while time.monotonic() < deadline and len(failures) < len(names):
        for name, run in runs.items():
            if name in failures or time.monotonic() >= deadline:
                continue
            try:
                run()
            except Exception as exc:
                failures[name] = "".join(traceback.format_exception(exc))
                print(f"--- {name} failed:\n{failures[name]}", file=sys.stderr, flush=True)
    print(f"{'target':<14} {'inputs':>10}  result")
    for name in names:
        verdict = "FAILED (see above)" if name in failures else "ok"
        print(f"{name:<14} {counts[name]:>10}  {verdict}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
