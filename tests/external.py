"""External test material that is not part of the repository (official conformance suites).

A user's clone has none of it, so a module that needs it is skipped with a reason saying how to
get it. CI sets ``CEROUTER_REQUIRE_CONFORMANCE=1``, which turns "absent" into a collection error,
so a suite can never be skipped there silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REQUIRE_ENVVAR = "CEROUTER_REQUIRE_CONFORMANCE"


def conformance_dir(envvar: str, default: Path, what: str, how: str) -> Path:
    """The directory ``$envvar`` names, else ``default``; skip the calling module if absent.

    Call at module level.  A directory the variable names explicitly must exist (a typo is an
    error, not a skip); so must the default one when ``$CEROUTER_REQUIRE_CONFORMANCE`` is 1.
    """
    named = os.environ.get(envvar)
    path = Path(named) if named else default
    if path.is_dir():
        return path
    if named:
        pytest.fail(f"{envvar}={named}: not a directory (the {what})", pytrace=False)
    reason = f"{what} not found at {path}; {how}, then set {envvar} to its path"
    if os.environ.get(REQUIRE_ENVVAR) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENVVAR}=1: it is required)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
