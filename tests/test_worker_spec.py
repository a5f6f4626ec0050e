"""The worker SDK without a server: type filters, registration rules, dead-letter headers."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from cerouter.cli.worker import load_app
from cerouter.config import model as config
from cerouter.errors import CerouterError, ConfigError
from cerouter.worker import ERROR_EVENT_TYPE, WorkerApp
from cerouter.worker.spec import (
    DEFAULT_DEADLETTER_STREAM,
    DEFAULT_DEADLETTER_SUBJECT,
    DEFAULT_WORK_PREFIX,
    TypeFilter,
    describe_error,
    error_event,
    one_line,
)


async def noop(event: CloudEvent) -> None:
    return None


# --------------------------------------------------------------------------- type filters


@pytest.mark.parametrize(
    ("flt", "event_type", "expected"),
    [
        ("com.example.order.paid", "com.example.order.paid", True),
        ("com.example.order.paid", "com.example.order.paid.v2", False),
        ("com.example.order.*", "com.example.order.paid", True),
        ("com.example.order.*", "com.example.order.paid.v2", True),
        ("com.example.order.*", "com.example.orders", False),
        ("com.example.order*", "com.example.orders", True),
        ("*", "anything", True),
    ],
)
def test_type_filter_rule(flt: str, event_type: str, expected: bool) -> None:
    assert TypeFilter.parse(flt).matches(event_type) is expected


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ("", "cannot be empty"),
        ("com.*.paid", "only allowed at the end"),
        ("com.example.", "write 'com.example.*'"),
    ],
)
def test_ambiguous_type_filters_are_refused(flt: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TypeFilter.parse(flt)


@given(st.text(alphabet="abc.", min_size=1, max_size=12))
def test_exact_filter_matches_only_itself(event_type: str) -> None:
    if event_type.endswith("."):
        return
    flt = TypeFilter.parse(event_type)
    assert flt.matches(event_type)
    assert not flt.matches(event_type + "x")
    assert str(flt) == event_type


def test_exact_filter_wins_then_longest_prefix() -> None:
    app = WorkerApp()
    for flt in ("*", "com.example.*", "com.example.order.*", "com.example.order.paid"):
        app.handler(flt, queue="q")(noop)
    (queue,) = app.queues()

    def pick(event_type: str) -> str:
        spec = queue.match(event_type)
        return "-" if spec is None else str(spec.type_filter)

    assert pick("com.example.order.paid") == "com.example.order.paid"
    assert pick("com.example.order.created") == "com.example.order.*"
    assert pick("com.example.user.created") == "com.example.*"
    assert pick("org.other") == "*"


# --------------------------------------------------------------------------- registration


def test_handler_registration_defaults_and_queues() -> None:
    app = WorkerApp("billing")

    @app.handler("com.example.order.paid", queue="billing", durable=True)
    async def bill(event: CloudEvent) -> None:
        return None

    @app.handler("com.example.order.refunded", queue="billing", durable=True)
    async def refund(event: CloudEvent) -> None:
        return None

    @app.handler("com.example.inventory.reserve", queue="inventory", subject="inventory.reserve")
    async def reserve(event: CloudEvent) -> None:
        return None

    billing, inventory = app.queues()
    assert (billing.name, billing.subject, billing.durable) == ("billing", "work.billing", True)
    assert [h.name for h in billing.handlers] == [
        "test_handler_registration_defaults_and_queues.<locals>.bill",
        "test_handler_registration_defaults_and_queues.<locals>.refund",
    ]
    assert (inventory.subject, inventory.durable) == ("inventory.reserve", False)
    assert bill.__name__ == "bill", "the decorator returns the function itself"
    assert billing.handlers[0].backoff == (1.0, 2.0, 5.0, 10.0)


def test_retry_delay_grows_then_repeats() -> None:
    app = WorkerApp()
    app.handler("*", queue="q", backoff=(0.2, 0.5))(noop)
    spec = app.handlers[0]
    assert [spec.retry_delay(n) for n in (1, 2, 3, 9)] == [0.2, 0.5, 0.5, 0.5]
    app.handler("x", queue="r", backoff=())(noop)
    assert app.handlers[1].retry_delay(3) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queue": "bad.name"}, "queue 'bad.name'"),
        ({"queue": "q", "subject": "work.*"}, "not a literal NATS subject"),
        ({"queue": "q", "max_deliver": 0}, "max_deliver must be at least 1"),
        ({"queue": "q", "ack_wait": 0}, "ack_wait must be positive"),
        ({"queue": "q", "backoff": (1, -1)}, "cannot be negative"),
        ({"queue": "q", "concurrency": 0}, "concurrency must be at least 1"),
        ({"queue": "q", "emit": "events.>"}, "emit subject"),
    ],
)
def test_bad_handler_options_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerApp().handler("t", **kwargs)(noop)  # type: ignore[arg-type]


def test_sync_handler_is_refused() -> None:
    def sync(event: CloudEvent) -> None:
        return None

    with pytest.raises(ConfigError, match="must be an 'async def'"):
        WorkerApp().handler("t", queue="q")(sync)  # type: ignore[arg-type]


def test_handlers_of_one_queue_must_agree() -> None:
    app = WorkerApp()
    app.handler("a", queue="q", durable=True)(noop)
    with pytest.raises(ConfigError, match="disagree on durable"):
        app.handler("b", queue="q")(noop)
    with pytest.raises(ConfigError, match="disagree on max_deliver"):
        app.handler("b", queue="q", durable=True, max_deliver=2)(noop)
    with pytest.raises(ConfigError, match="registered twice"):
        app.handler("a", queue="q", durable=True)(noop)
    assert len(app.handlers) == 1, "a refused handler is not registered"


def test_app_without_handlers_cannot_run() -> None:
    with pytest.raises(ConfigError, match="has no handlers"):
        WorkerApp("empty").run(None)  # type: ignore[arg-type]


def test_defaults_mirror_the_router_config() -> None:
    assert DEFAULT_WORK_PREFIX == config.DEFAULT_WORK_PREFIX
    assert DEFAULT_DEADLETTER_STREAM == config.DEFAULT_DEADLETTER_STREAM
    assert DEFAULT_DEADLETTER_SUBJECT == config.DEFAULT_DEADLETTER_SUBJECT


def test_reasons_are_one_printable_line() -> None:
    assert describe_error(ValueError("bad\r\n  order\tgone")) == "ValueError: bad order gone"
    assert describe_error(RuntimeError()) == "RuntimeError"
    assert one_line("€ 😀") == "\\u20ac \\U0001f600"
    assert len(one_line("x" * 1000)) == 500


def test_error_event_names_the_request() -> None:
    event = error_event("/w", "boom", {"id": "1", "source": "/s", "type": "t", "x": "y"})
    assert event.get_type() == ERROR_EVENT_TYPE
    assert event.get_data() == {"error": "boom", "event": {"id": "1", "source": "/s", "type": "t"}}
    assert event.get_time() is not None


# --------------------------------------------------------------------------- loading an app


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    name = f"app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent("""
            from cerouter.worker import WorkerApp
            app = WorkerApp("demo")
            other = WorkerApp("other")
            number = 42
        """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path, name


def test_load_app_by_module_and_by_file(module_dir: tuple[Path, str]) -> None:
    _, name = module_dir
    assert load_app(f"{name}:app").name == "demo"
    assert load_app(name).name == "demo"
    assert load_app(f"{name}.py:other").name == "other"


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        (":missing", "has no attribute 'missing'"),
        (":number", "is a int, not a cerouter WorkerApp"),
    ],
)
def test_load_app_errors(module_dir: tuple[Path, str], suffix: str, message: str) -> None:
    _, name = module_dir
    with pytest.raises(CerouterError, match=message):
        load_app(name + suffix)


def test_load_app_reports_a_broken_module(module_dir: tuple[Path, str]) -> None:
    directory, _ = module_dir
    (directory / "broken_mod_x1.py").write_text("import does_not_exist_anywhere\n")
    with pytest.raises(CerouterError, match="No module named 'does_not_exist_anywhere'"):
        load_app("broken_mod_x1:app")
    with pytest.raises(CerouterError, match="no such file"):
        load_app("nowhere/x.py:app")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"pull_expires": 0.01}, "pull_expires must be at least 0.1 seconds"),
        ({"drain_timeout": -1}, "drain_timeout must be at least 0.0 seconds"),
        ({"emit": "a b"}, "emit subject"),
        ({"deadletter_stream": "DEAD.LETTER"}, "dead-letter stream"),
    ],
)
def test_bad_app_options_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerApp("x", **kwargs)  # type: ignore[arg-type]
