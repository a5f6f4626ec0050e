"""CLI commands that talk to NATS directly: ``server``, ``publish`` and ``sub``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from nats.aio.msg import Msg

from cerouter.binding import (
    DataKind,
    DecodedEvent,
    Mode,
    decode,
    encode,
    is_json_content_type,
    to_sdk,
)
from cerouter.cli.support import (
    CredsOption,
    NatsRoutesOption,
    NatsUrlOption,
    NoAuthOption,
    PasswordOption,
    PortOption,
    ServerStoreDirOption,
    StoreDirOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    TokenOption,
    UserOption,
    fail,
    nats_settings,
    note,
)
from cerouter.config.model import NatsSettings
from cerouter.delivery.deadletter import REASON_HEADER, parse_deadletter
from cerouter.errors import CerouterError
from cerouter.nats.connection import DEFAULT_URL, connect_once, connect_service, full_flush
from cerouter.nats.embedded import DEFAULT_HOST, DEFAULT_PORT, EmbeddedServer, ServerConfig
from cerouter.nats.local_auth import DEFAULT_STORE_DIR, ensure_token, token_path
from cerouter.routing.subjects import SubjectError, check_subject
from cerouter.timestamps import format_timestamp, is_rfc3339

_EXT = re.compile(r"([a-z0-9]+)=(.*)", re.DOTALL)
_RESERVED = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
             "dataschema", "data", "data_base64"}  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``server``, ``publish`` and ``sub`` to the main app."""
    app.command("server")(server)
    app.command("publish")(publish)
    app.command("sub")(sub)


# --------------------------------------------------------------------------- server


def server(
    port: PortOption = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULT_HOST,
    store_dir: ServerStoreDirOption = DEFAULT_STORE_DIR,
    no_auth: NoAuthOption = False,
) -> None:
    """Run the embedded nats-server (JetStream on) in the foreground until Ctrl-C.

    Clients must present the token kept in the store (made on the first start); cerouter
    commands run from this directory find it on their own.
    """
    try:
        token = None if no_auth else ensure_token(store_dir)
        srv = EmbeddedServer(ServerConfig(host=host, port=port, store_dir=store_dir, token=token))
        srv.start()
    except CerouterError as exc:
        fail("server", str(exc).splitlines()[0])
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    note(f"nats-server running at {srv.url} (JetStream store: {srv.store_dir}); Ctrl-C to stop")
    if token is None:
        note("no authentication (--no-auth): anyone on this machine may read and delete events")
    else:
        note(
            f"clients authenticate with the token in {token_path(store_dir)}: cerouter commands "
            f"find it from this directory (elsewhere: --store-dir {store_dir.resolve()})"
        )
    flag = "" if srv.url == DEFAULT_URL else f" -s {srv.url}"
    note(
        f"try: cerouter sub 'events.>'{flag} and cerouter publish events.demo{flag} "
        "--type demo --source /me"
    )
    try:
        while not stop.wait(0.5):
            if not srv.running:
                fail("server", f"nats-server exited unexpectedly: {srv.log_tail(3)}")
    finally:
        srv.stop()
    note("nats-server stopped")


# --------------------------------------------------------------------------- publish


def publish(
    subject: Annotated[str, typer.Argument(help="NATS subject to publish to.")],
    type_: Annotated[str | None, typer.Option("--type", "-t", help="Event type.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Event source (URI-reference).")
    ] = None,
    id_: Annotated[str | None, typer.Option("--id", help="Event id (default: a UUID).")] = None,
    data: Annotated[
        str | None, typer.Option(help="Event data (JSON unless a non-JSON --datacontenttype).")
    ] = None,
    data_file: Annotated[
        Path | None, typer.Option(help="Read event data from a file ('-' = stdin).")
    ] = None,
    datacontenttype: Annotated[str | None, typer.Option(help="Media type of the data.")] = None,
    dataschema: Annotated[str | None, typer.Option(help="URI of the data's schema.")] = None,
    ce_subject: Annotated[
        str | None, typer.Option("--ce-subject", help="The CloudEvents 'subject' attribute.")
    ] = None,
    time: Annotated[str | None, typer.Option(help="RFC 3339 time (default: now).")] = None,
    ext: Annotated[
        list[str] | None, typer.Option(help="Extension attribute name=value (repeatable).")
    ] = None,
    event_file: Annotated[
        Path | None,
        typer.Option(
            "--event",
            help="Publish this JSON event file as written (not checked: test your router with it).",
        ),
    ] = None,
    mode: Annotated[Mode, typer.Option(help="Content mode on the wire.")] = Mode.STRUCTURED,
    nats_url: NatsUrlOption = None,
    routes: NatsRoutesOption = None,
    creds: CredsOption = None,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    store_dir: StoreDirOption = DEFAULT_STORE_DIR,
) -> None:
    """Publish one CloudEvent to a NATS subject, in structured or binary mode.

    Build it from options (--type and --source at least), or take a whole event with --event.
    """
    try:
        check_subject(subject, wildcards=False)
    except SubjectError as exc:
        fail("publish", f"{exc} (publish to a literal subject such as events.demo)", 2)
    try:
        if event_file is not None:
            event = _read_event(event_file)
            _require_id(event, str(event_file))
        elif type_ is None or source is None:
            raise CerouterError("--type and --source are required (or give --event FILE)")
        else:
            event = _build_event(
                type_, source, id_, data, data_file, datacontenttype, dataschema, ce_subject,
                time, ext,
            )  # fmt: skip
        message = encode(event, mode)
    except CerouterError as exc:
        fail("publish", str(exc), 2)
    settings = nats_settings(
        "publish", urls=nats_url, routes=routes, creds=creds, token=token, user=user,
        password=password, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
        name="cerouter-publish", store_dir=store_dir,
    )  # fmt: skip
    try:
        asyncio.run(_publish(settings, subject, message.headers, message.payload))
    except CerouterError as exc:
        fail("publish", str(exc))
    note(f"published {event.attributes['id']} to {subject} ({mode.value} mode)")


def _require_id(event: DecodedEvent, origin: str) -> None:
    # --event publishes a file as written, so that invalid events can test the router; but an
    # event without an id cannot be traced (logs, dead letters and dedupe ids all name it).
    event_id = event.attributes.get("id")
    if isinstance(event_id, str) and event_id:
        return
    if event_id is None:
        problem = "has no 'id'"
    elif event_id == "":
        problem = "has an empty 'id'"
    else:
        problem = f"has a non-string 'id' ({type(event_id).__name__})"
    raise CerouterError(f"{origin}: the event {problem}; every CloudEvent needs a non-empty id")


def _read_event(path: Path) -> DecodedEvent:
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise CerouterError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return decode(None, raw)
    except CerouterError as exc:
        raise CerouterError(f"{path}: {exc}") from None


def _build_event(
    type_: str,
    source: str,
    id_: str | None,
    data: str | None,
    data_file: Path | None,
    datacontenttype: str | None,
    dataschema: str | None,
    ce_subject: str | None,
    time: str | None,
    ext: list[str] | None,
) -> DecodedEvent:
    if id_ == "":
        raise CerouterError("--id is empty; every CloudEvent needs a non-empty id")
    if time is not None and not is_rfc3339(time):
        raise CerouterError(f"--time {time!r} is not an RFC 3339 timestamp")
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": id_ if id_ is not None else str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "time": time if time is not None else format_timestamp(datetime.now(UTC)),
    }
    for name, value in (
        ("datacontenttype", datacontenttype),
        ("dataschema", dataschema),
        ("subject", ce_subject),
    ):
        if value is not None:
            attributes[name] = value
    for item in ext or []:
        m = _EXT.fullmatch(item)
        if m is None:
            raise CerouterError(
                f"--ext {item!r}: expected name=value with a name of lower-case letters and digits"
            )
        if m.group(1) in _RESERVED:
            raise CerouterError(
                f"--ext {item!r}: {m.group(1)!r} is not an extension; use its option"
            )
        attributes[m.group(1)] = m.group(2)
    event = _with_data(attributes, data, data_file, datacontenttype)
    to_sdk(event)  # the SDK's own checks: required attributes, names
    return event


def _with_data(
    attributes: dict[str, Any], data: str | None, data_file: Path | None, ctype: str | None
) -> DecodedEvent:
    if data is not None and data_file is not None:
        raise CerouterError("give --data or --data-file, not both")
    raw: bytes
    origin: str
    if data is not None:
        raw, origin = data.encode("utf-8"), "--data"
    elif data_file is not None:
        origin = str(data_file)
        try:
            raw = sys.stdin.buffer.read() if str(data_file) == "-" else data_file.read_bytes()
        except OSError as exc:
            raise CerouterError(f"cannot read {data_file}: {exc.strerror}") from None
    else:
        return DecodedEvent(attributes, Mode.STRUCTURED)
    if is_json_content_type(ctype):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CerouterError(f"{origin} is not valid JSON: {exc}") from None
        return DecodedEvent(attributes, Mode.STRUCTURED, value, DataKind.JSON)
    assert ctype is not None  # is_json_content_type(None) is True
    if data is not None:
        return DecodedEvent(attributes, Mode.STRUCTURED, data, DataKind.TEXT)
    return DecodedEvent(attributes, Mode.STRUCTURED, raw, DataKind.BYTES)


async def _publish(
    settings: NatsSettings, subject: str, headers: dict[str, str], payload: bytes
) -> None:
    nc = await connect_once(settings)
    try:
        await nc.publish(subject, payload, headers=headers or None)
        await nc.flush()
    finally:
        await nc.close()


# --------------------------------------------------------------------------- sub


def sub(
    subjects: Annotated[
        list[str], typer.Argument(help="Subjects to listen on (wildcards allowed).")
    ],
    count: Annotated[int | None, typer.Option(help="Exit after this many messages.")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Give up after this many seconds (exit 1).")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Join this queue group.")] = None,
    quiet: Annotated[bool, typer.Option(help="Do not say where each event came from.")] = False,
    nats_url: NatsUrlOption = None,
    routes: NatsRoutesOption = None,
    creds: CredsOption = None,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    store_dir: StoreDirOption = DEFAULT_STORE_DIR,
) -> None:
    """Print each CloudEvent received on SUBJECT as one JSON line (structured JSON format).

    stdout carries only the events, so it can be piped into `cerouter validate -`; stderr says
    which subject and content mode each came in on, and reports messages that are not CloudEvents.
    When the connection drops, sub says so and reconnects until the server is back (--timeout
    keeps counting meanwhile); events published while it is away are missed.
    """
    for pattern in subjects:
        try:
            check_subject(pattern, wildcards=True)
        except SubjectError as exc:
            fail("sub", str(exc), 2)
    settings = nats_settings(
        "sub", urls=nats_url, routes=routes, creds=creds, token=token, user=user,
        password=password, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
        name="cerouter-sub", store_dir=store_dir,
    )  # fmt: skip
    try:
        received = asyncio.run(_sub(settings, subjects, count, timeout, queue, quiet))
    except KeyboardInterrupt:
        return
    except CerouterError as exc:
        fail("sub", str(exc))
    if count is not None and received < count:
        fail("sub", f"timed out after {timeout}s with {received} of {count} messages")


async def _sub(
    settings: NatsSettings,
    subjects: list[str],
    count: int | None,
    max_wait: float | None,
    queue: str | None,
    quiet: bool,
) -> int:
    # A long-running command: it rides out a server restart (nats-py subscribes again), saying
    # so on stderr; events published while it is away are missed, as core NATS does.
    closing = False
    where = settings.urls[0]

    def on_connection(state: str, detail: str) -> None:
        if closing:
            return
        if state == "disconnected":
            note(f"cerouter sub: connection to {where} lost; reconnecting")
        elif state == "reconnected":
            note(f"cerouter sub: reconnected to {detail or where}")

    nc = await connect_service(settings, on_event=on_connection)
    done = asyncio.Event()
    received = 0

    async def on_message(msg: Msg) -> None:
        nonlocal received
        received += 1
        _show(msg, quiet)
        if count is not None and received >= count:
            done.set()

    try:
        for subject in subjects:
            await nc.subscribe(subject, queue=queue or "", cb=on_message)
        await full_flush(nc)  # subscribed for real before "listening" is printed
        where = nc.connected_url.geturl() if nc.connected_url else where
        note(f"cerouter sub: listening on {' '.join(subjects)} at {where}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), max_wait)
    finally:
        closing = True
        await nc.close()
    return received


def _show(msg: Msg, quiet: bool) -> None:
    try:
        event = decode(msg.headers, msg.data)
        to_sdk(event)  # rejects what the SDK would not accept as a CloudEvent
        line = encode(event, Mode.STRUCTURED).payload.decode("utf-8")
    except CerouterError as exc:
        note(f"cerouter sub: {msg.subject}: not a CloudEvent: {exc}{_deadletter_note(msg)}")
        return
    if not quiet:
        note(f"received on {msg.subject} in {event.mode.value} mode{_deadletter_note(msg)}")
    print(line, flush=True)


def _deadletter_note(msg: Msg) -> str:
    # Dead letters are the original message plus cerouter-* headers: show why it is there.
    if not msg.headers or REASON_HEADER not in msg.headers:
        return ""
    record = parse_deadletter(msg.headers, b"", subject=msg.subject)
    reason = record.reason or msg.headers.get(REASON_HEADER)
    where = f", route {record.route}" if record.route else ""
    where += f", queue {record.queue}" if record.queue else ""
    return f" (dead letter, {reason}{where}: {record.detail})"
