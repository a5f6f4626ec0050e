"""`cerouter sub` says why each dead letter is there, whoever wrote it (router or worker)."""

from __future__ import annotations

from pathlib import Path

import nats
import orjson
import pytest

from cerouter.delivery.deadletter import build_deadletter
from cerouter.pipeline import Rejection
from cerouter.routing.subjects import SubjectTemplate
from cerouter.types import Reason, Stage
from tests.helpers import CliProcess
from tests.routerkit import event

pytestmark = pytest.mark.nats


@pytest.mark.parametrize(
    ("rejection", "queue", "expected"),
    [
        (
            Rejection(Reason.HANDLER, Stage.HANDLER, "ValueError: no customer €"),
            "billing",
            "(dead letter, handler, queue billing: ValueError: no customer €)",
        ),
        (
            Rejection(Reason.SCHEMA, Stage.DATA, "data/price: -3 < 0", route="orders"),
            None,
            "(dead letter, schema, route orders: data/price: -3 < 0)",
        ),
    ],
    ids=["worker", "router"],
)
async def test_sub_shows_the_reason_of_every_dead_letter(
    tmp_path: Path, nats_url: str, rejection: Rejection, queue: str | None, expected: str
) -> None:
    payload = orjson.dumps(event("com.example.order.created", id_="d-1"))
    headers = {"Content-Type": "application/cloudevents+json"}
    letter = build_deadletter(
        SubjectTemplate.parse("dl.{reason}"), rejection, subject="work.billing",
        headers=headers, payload=payload, queue=queue,
    )  # fmt: skip
    sub = CliProcess("sub", "dl.>", "--count", "1", "--timeout", "20", "-s", nats_url, cwd=tmp_path)
    try:
        await sub.wait_for_stderr_async("listening on dl.>")
        nc = await nats.connect(nats_url)
        await nc.publish(letter.subject, letter.payload, headers=letter.headers)
        await nc.flush()
        await nc.close()
        line = await sub.wait_for_stderr_async("dead letter")
        code, _, err = sub.finish()
    finally:
        sub.kill()
    assert code == 0, err
    assert line.endswith(expected)
