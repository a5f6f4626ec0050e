"""Provisioning changes what routes.yaml declares and nothing else (checked on a real server).

A stream made by hand (or by an operator's tooling) carries settings cerouter does not manage:
``discard: new``, a message size limit, a per-subject limit, metadata. Updating a declared
setting must keep them; a setting routes.yaml does not mention must keep the stream's value.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from cerouter.config.load import load_config
from cerouter.config.model import StreamSpec
from cerouter.nats.provision import Provisioned, ProvisionError, provision_streams
from tests.routerkit import write_routes

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

HAND_MADE = StreamConfig(
    name="ORDERS",
    subjects=["orders.>"],
    description="made by hand",
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    discard=DiscardPolicy.NEW,
    max_msg_size=4096,
    max_msgs_per_subject=7,
    max_age=3600.0,
    max_bytes=10_000_000,
    max_msgs=1000,
    num_replicas=1,
    duplicate_window=30.0,
    allow_rollup_hdrs=True,
    deny_delete=True,
    metadata={"owner": "ops"},
)


def streams(tmp_path: Path, body: str) -> list[StreamSpec]:
    config = load_config(write_routes(tmp_path, f"routes: []\nstreams:\n{body}"))
    return [s for s in config.streams if s.name == "ORDERS"]


async def existing(nc: Client) -> StreamConfig:
    js = nc.jetstream()
    await js.add_stream(HAND_MADE)
    return (await js.stream_info("ORDERS")).config


def without_server_metadata(config: StreamConfig) -> StreamConfig:
    # The server stamps metadata with its own version keys (_nats.*); compare the user's.
    mine = {k: v for k, v in (config.metadata or {}).items() if not k.startswith("_nats.")}
    return dataclasses.replace(config, metadata=mine)


async def test_a_declared_change_keeps_every_undeclared_setting(nc: Client, tmp_path: Path) -> None:
    before = await existing(nc)
    specs = streams(tmp_path, "  - {name: ORDERS, subjects: [orders.>], max_age: 2h}\n")
    [done] = await provision_streams(nc.jetstream(), specs)
    after = (await nc.jetstream().stream_info("ORDERS")).config
    assert done == Provisioned("ORDERS", "updated", ("max_age 3600.0s -> 7200.0s",))
    assert after.max_age == 7200.0
    assert after.discard == "new"
    assert (after.max_msg_size, after.max_msgs_per_subject) == (4096, 7)
    assert after.description == "made by hand"
    assert without_server_metadata(after) == without_server_metadata(
        dataclasses.replace(before, max_age=7200.0)
    )


async def test_settings_routes_yaml_does_not_declare_are_left_alone(
    nc: Client, tmp_path: Path
) -> None:
    before = await existing(nc)
    specs = streams(tmp_path, "  - {name: ORDERS, subjects: [orders.>]}\n")
    [done] = await provision_streams(nc.jetstream(), specs)
    after = (await nc.jetstream().stream_info("ORDERS")).config
    assert done == Provisioned("ORDERS", "unchanged")
    assert without_server_metadata(after) == without_server_metadata(before)


async def test_every_declared_setting_is_applied_and_named(nc: Client, tmp_path: Path) -> None:
    await existing(nc)
    body = (
        "  - {name: ORDERS, subjects: [orders.>, shop.orders], description: declared,\n"
        "     max_age: 0, max_bytes: 20MB, max_msgs: 50, replicas: 1, duplicate_window: 1m}\n"
    )
    [done] = await provision_streams(nc.jetstream(), streams(tmp_path, body))
    after = (await nc.jetstream().stream_info("ORDERS")).config
    assert done.action == "updated"
    assert [change.split()[0] for change in done.changes] == [
        "subjects", "description", "max_age", "max_bytes", "max_msgs", "duplicate_window",
    ]  # fmt: skip
    assert sorted(after.subjects or []) == ["orders.>", "shop.orders"]
    assert (after.description, after.max_age, after.max_bytes, after.max_msgs) == (
        "declared", 0.0, 20_000_000, 50,
    )  # fmt: skip
    assert after.duplicate_window == 60.0
    assert (after.discard, after.max_msg_size, after.max_msgs_per_subject) == ("new", 4096, 7)


async def test_a_new_stream_gets_the_defaults(nc: Client, tmp_path: Path) -> None:
    specs = streams(tmp_path, "  - {name: ORDERS, subjects: [orders.>]}\n")
    [done] = await provision_streams(nc.jetstream(), specs)
    config = (await nc.jetstream().stream_info("ORDERS")).config
    assert done == Provisioned("ORDERS", "created")
    assert (config.retention, config.storage, config.discard) == ("limits", "file", "old")
    assert (config.max_age, config.max_bytes, config.max_msgs) == (0.0, -1, -1)
    assert (config.num_replicas, config.duplicate_window) == (1, 120.0)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ("retention: workqueue", "retention limits -> workqueue"),
        ("storage: memory", "storage file -> memory"),
    ],
)
async def test_a_declared_retention_or_storage_that_differs_is_an_error(
    nc: Client, tmp_path: Path, declared: str, message: str
) -> None:
    before = await existing(nc)
    specs = streams(tmp_path, f"  - {{name: ORDERS, subjects: [orders.>], {declared}}}\n")
    with pytest.raises(ProvisionError, match=message):
        await provision_streams(nc.jetstream(), specs)
    after = (await nc.jetstream().stream_info("ORDERS")).config
    assert without_server_metadata(after) == without_server_metadata(before)
