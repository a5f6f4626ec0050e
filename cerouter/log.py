"""Logging: structlog, JSON lines when not on a terminal, readable console output on one.

Every line carries ``logger`` (the component: ``cerouter.router``, ``cerouter.worker``, ...),
``level`` and ``timestamp``; fields that are ``None`` or empty are left out. Per-event fields
(``ce_id``, ``ce_type``, ``ce_source``, ``route``) come from ``structlog.contextvars``, bound by
the router and the workers with the same names. With tracing on, lines logged inside a span
carry its ``trace_id`` and ``span_id``. Standard-library logging (nats-py's) goes
through the same renderer, so with ``--log-format json`` every line on stderr is JSON.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger


class LogFormat(StrEnum):
    """``--log-format``: JSON lines, readable lines, or JSON unless stderr is a terminal."""

    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    """``--log-level``."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_state = {"json": False}  # set once by configure_logging: how the process writes its lines


def json_lines() -> bool:
    """Whether :func:`configure_logging` chose JSON lines (one-line CLI errors follow suit)."""
    return _state["json"]


def get_logger(name: str) -> Any:
    """A logger whose lines carry ``logger=name`` (resolved lazily: safe at import time)."""
    return structlog.get_logger(name)


class _NamedPrintLogger(structlog.PrintLogger):
    """A print logger that knows its name, for ``add_logger_name``."""

    def __init__(self, name: str) -> None:
        super().__init__(sys.stderr)
        self.name = name


def _logger_factory(*args: Any) -> _NamedPrintLogger:
    return _NamedPrintLogger(str(args[0]) if args else "cerouter")


FIELD_LIMIT = 256
"""The most characters of one per-event log field (``ce_id``, ``ce_type``, ``ce_source``)."""


def event_fields(attributes: Mapping[str, object] | None) -> dict[str, object]:
    """The per-event log fields (``ce_id``, ``ce_type``, ``ce_source``), only those present."""
    if not attributes:
        return {}
    fields = {
        "ce_id": attributes.get("id"),
        "ce_type": attributes.get("type"),
        "ce_source": attributes.get("source"),
    }
    # The producer chose these: cut each, so one hostile event cannot write a huge log line.
    return {
        k: v if len(s := str(v)) <= FIELD_LIMIT else s[: FIELD_LIMIT - 3] + "..."
        for k, v in fields.items()
        if v is not None and v != ""
    }


_span_source: list[Callable[[], tuple[str, str] | None]] = []


def set_span_ids(source: Callable[[], tuple[str, str] | None]) -> None:
    """Where :func:`add_trace_ids` reads the current span's ids (:mod:`cerouter.tracing` sets
    it when tracing is turned on; until then log lines carry no trace fields)."""
    _span_source[:] = [source]


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add ``trace_id`` and ``span_id`` of the current span (only once tracing is on)."""
    if _span_source and (ids := _span_source[0]()) is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def _drop_empty(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    return {k: v for k, v in event.items() if v is not None and v != ""}


def configure_logging(
    fmt: LogFormat | str = LogFormat.AUTO, level: LogLevel | str = LogLevel.INFO
) -> None:
    """Set up structlog (and the standard library's logging) for the process, once."""
    fmt = LogFormat(fmt)
    use_json = fmt is LogFormat.JSON or (fmt is LogFormat.AUTO and not sys.stderr.isatty())
    _state["json"] = use_json
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = logging.getLevelNamesMapping()[str(LogLevel(level)).upper()]
    shared: list[Processor] = [
        structlog.stdlib.add_logger_name,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_trace_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_empty,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
