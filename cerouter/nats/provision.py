"""Provisioning: make the JetStream streams routes.yaml declares exist, as declared.

Idempotent: a missing stream is created; an existing one whose updatable settings (subjects,
limits, duplicate window, description) differ is updated, and the change is logged; one whose
retention or storage differ cannot be changed in place, so start-up stops with an error that says
so rather than deleting anybody's data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from cerouter.config.model import StreamSpec
from cerouter.errors import CerouterError


class ProvisionError(CerouterError):
    """A declared stream conflicts with the one on the server, or the server refused it."""


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What provisioning did to one stream: ``created``, ``updated`` or ``unchanged``."""

    name: str
    action: str
    changes: tuple[str, ...] = ()


def stream_config(spec: StreamSpec) -> StreamConfig:
    """The nats-py stream configuration of a declared stream."""
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=list(spec.subjects),
        retention=RetentionPolicy(spec.retention),
        storage=StorageType(spec.storage),
        max_age=spec.max_age,
        max_bytes=spec.max_bytes if spec.max_bytes is not None else -1,
        max_msgs=spec.max_msgs if spec.max_msgs is not None else -1,
        num_replicas=spec.replicas,
        duplicate_window=spec.duplicate_window,
    )


def _name(value: object) -> str:
    # nats-py returns enums for what it sends but plain strings for what the server reports.
    return str(value.value) if isinstance(value, Enum) else str(value)


def _differences(want: StreamConfig, have: StreamConfig) -> tuple[list[str], list[str]]:
    fixed: list[str] = []
    for key in ("retention", "storage"):
        old, new = _name(getattr(have, key)), _name(getattr(want, key))
        if old != new:
            fixed.append(f"{key} {old} -> {new}")
    changes: list[str] = []
    if sorted(want.subjects or []) != sorted(have.subjects or []):
        changes.append(f"subjects {have.subjects} -> {want.subjects}")
    for key in ("max_bytes", "max_msgs", "num_replicas", "description"):
        if getattr(want, key) != getattr(have, key):
            changes.append(f"{key} {getattr(have, key)} -> {getattr(want, key)}")
    for key in ("max_age", "duplicate_window"):
        if abs((getattr(want, key) or 0) - (getattr(have, key) or 0)) > 1e-6:
            changes.append(f"{key} {getattr(have, key)}s -> {getattr(want, key)}s")
    return fixed, changes


async def provision_streams(js: JetStreamContext, specs: Iterable[StreamSpec]) -> list[Provisioned]:
    """Create or update every declared stream; raise :class:`ProvisionError` on a conflict."""
    done: list[Provisioned] = []
    for spec in specs:
        want = stream_config(spec)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            info = None
        except Exception as exc:  # timeouts, a lost connection, JetStream disabled
            raise ProvisionError(
                f"cannot read stream {spec.name}: {exc or type(exc).__name__}"
            ) from None
        if info is None:
            try:
                await js.add_stream(want)
            except Exception as exc:
                raise ProvisionError(f"cannot create stream {spec.name}: {exc}") from None
            done.append(Provisioned(spec.name, "created"))
            continue
        fixed, changes = _differences(want, info.config)
        if fixed:
            raise ProvisionError(
                f"stream {spec.name} exists with {'; '.join(fixed)}; these cannot be changed in "
                "place: delete the stream or change routes.yaml"
            )
        if not changes:
            done.append(Provisioned(spec.name, "unchanged"))
            continue
        try:
            await js.update_stream(want)
        except Exception as exc:
            raise ProvisionError(f"cannot update stream {spec.name}: {exc}") from None
        done.append(Provisioned(spec.name, "updated", tuple(changes)))
    return done
