"""``POST /events`` and the webhook handshake (``OPTIONS /events``).

A request is read by the HTTP binding into the messages the NATS binding reads, handed to the
router core as :class:`~cerouter.types.Inbound` values, and answered once the outcome is known
(:mod:`cerouter.gateway.outcome` maps it to a status). Everything a request can do wrong is a
status with a problem body; nothing it sends can raise out of here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from nats.aio.msg import Msg
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cerouter.binding import decode
from cerouter.binding.http import (
    HttpEvents,
    HttpMode,
    TooManyEvents,
    UnsupportedMedia,
    read_request,
    write_event,
)
from cerouter.errors import BindingError
from cerouter.gateway.auth import Principal
from cerouter.gateway.context import GatewayContext
from cerouter.gateway.outcome import PROBLEM_CONTENT_TYPE, Answer, answer, problem
from cerouter.gateway.sse_token import unauthorized
from cerouter.ingress.base import Verdict
from cerouter.ingress.http import HTTP_SUBJECT, MAX_ATTEMPTS, HttpSettler
from cerouter.log import get_logger
from cerouter.types import Inbound, Reason

log = get_logger("cerouter.gateway")

REPLY_WAIT = 5.0
"""How long a request whose ``request:`` route succeeded waits for the answer to arrive."""


def respond(result: Answer) -> Response:
    """An :class:`Answer` as a JSON (or problem+json) response."""
    media = PROBLEM_CONTENT_TYPE if result.is_problem else "application/json"
    return Response(
        orjson.dumps(result.body), result.status, headers=result.headers, media_type=media
    )


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it exceeds ``limit`` bytes (the rest is not read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post_events(request: Request) -> Response:
    """Take one event (structured or binary) or a batch; answer with what became of it."""
    ctx: GatewayContext = request.app.state.ctx
    principal = ctx.auth.authenticate(request.headers.get("authorization"))
    if principal is None:
        return unauthorized(given="authorization" in request.headers)
    deadline = ctx.settings.limits.read_timeout
    try:
        # A total deadline, not one per read: a body trickled a byte at a time must not hold
        # its connection (and its client's in-flight count) for ever.
        async with asyncio.timeout(deadline):
            body = await read_body(request, ctx.max_body)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is listening; nothing was taken
    except TimeoutError:
        out = problem(408, f"the body did not arrive within {deadline:g}s")
        return respond(Answer(out.status, out.body, {"connection": "close"}))
    if body is None:
        return respond(problem(413, f"the body is larger than {ctx.max_body} bytes"))
    try:
        events = read_request(
            request.headers.items(), body, batch_max=ctx.settings.batch_max
        )  # fmt: skip
    except UnsupportedMedia as exc:
        return respond(problem(415, str(exc)))
    except TooManyEvents as exc:
        return respond(problem(413, str(exc)))
    except BindingError as exc:
        return respond(problem(400, str(exc), reason=str(Reason.BINDING)))
    if principal.restricted and (refused := _refused(principal, events)) is not None:
        return respond(refused)
    if ctx.slots.locked():
        out = problem(503, "the gateway is at its in-flight limit; retry later")
        return respond(Answer(out.status, out.body, {"retry-after": "1"}))
    async with ctx.slots:
        answers = await _submit(ctx, events, _peer(request))
    if events.mode is not HttpMode.BATCH:
        return answers[0] if isinstance(answers[0], Response) else respond(answers[0])
    results = [a.body | {"status": a.status} if isinstance(a, Answer) else a for a in answers]
    return Response(orjson.dumps({"results": results}), 207, media_type="application/json")


def _peer(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client is not None else "unknown"


def _refused(principal: Principal, events: HttpEvents) -> Answer | None:
    for headers, payload in events.messages:
        try:
            attributes = decode(headers, payload).attributes
        except BindingError:
            continue  # not readable: the pipeline rejects it with the reason
        if not principal.may_publish(attributes):
            return problem(
                403,
                f"token '{principal.name}' may not publish events of type "
                f"'{attributes.get('type')}' from source '{attributes.get('source')}'",
            )
    return None


async def _submit(ctx: GatewayContext, events: HttpEvents, peer: str) -> list[Any]:
    """Route every message of the request; one answer (or reply response) per message."""
    settlers = [HttpSettler(peer) for _ in events.messages]
    replies = [ctx.inbox.reserve() for _ in events.messages]
    try:
        inbounds = [
            Inbound(HTTP_SUBJECT, headers, payload, reply, settler, MAX_ATTEMPTS)
            for (headers, payload), settler, (reply, _) in zip(
                events.messages, settlers, replies, strict=True
            )
        ]
        verdicts = await ctx.submit(inbounds)
        out: list[Any] = []
        for verdict, settler, (_, future) in zip(verdicts, settlers, replies, strict=True):
            result = answer(verdict, settler.settled, settler.delay)
            if result.status == 202 and _requested(verdict):
                reply = await _reply(future)
                if reply is not None and events.mode is not HttpMode.BATCH:
                    out.append(_reply_response(reply, events.mode))
                    continue
                if reply is not None:
                    result = Answer(200, {"outcome": "replied", **_reply_json(reply)})
            out.append(result)
        return out
    finally:
        for subject, _ in replies:
            ctx.inbox.release(subject)


def _requested(verdict: Verdict) -> bool:
    return any(
        d.destination.kind == "request" for m in verdict.decision.matches for d in m.destinations
    )


async def _reply(future: asyncio.Future[Msg]) -> Msg | None:
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        return await asyncio.wait_for(asyncio.shield(future), REPLY_WAIT)
    return None


def _reply_response(msg: Msg, mode: HttpMode) -> Response:
    """The responder's answer, in the request's content mode when it is a CloudEvent."""
    try:
        event = decode(msg.headers, msg.data)
    except BindingError:
        media = (msg.headers or {}).get("Content-Type", "application/octet-stream")
        return Response(msg.data, 200, media_type=media)
    try:
        headers, body = write_event(event, mode)
    except BindingError:
        return Response(msg.data, 200, media_type="application/octet-stream")
    return Response(body, 200, headers=headers)


def _reply_json(msg: Msg) -> dict[str, Any]:
    try:
        event = decode(msg.headers, msg.data)
        _, body = write_event(event, HttpMode.STRUCTURED)
        return {"reply": orjson.loads(body)}
    except (BindingError, orjson.JSONDecodeError):
        return {"reply_bytes": len(msg.data)}


async def options_events(request: Request) -> Response:
    """The CloudEvents webhook validation handshake (CloudEvents Web Hooks, section 4)."""
    ctx: GatewayContext = request.app.state.ctx
    origin = request.headers.get("webhook-request-origin")
    allowed = ctx.settings.allowed_origins
    headers = {"allow": "POST, OPTIONS"}
    if origin is None:
        return Response(status_code=204, headers=headers)
    if "*" not in allowed and origin not in allowed:
        return respond(problem(403, f"origin '{origin}' is not allowed to send events here"))
    headers["webhook-allowed-origin"] = origin if "*" not in allowed else "*"
    headers["webhook-allowed-rate"] = "*"
    return Response(status_code=200, headers=headers)
