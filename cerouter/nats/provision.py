"""Provisioning: make the JetStream streams routes.yaml declares exist, as declared.

Idempotent: a missing stream is created (undeclared settings get NATS's defaults); an existing
one whose declared settings (subjects, limits, replicas, duplicate window, description) differ
is updated, and the change is logged. Only declared settings are touched: the update starts from
the stream's configuration on the server, so what routes.yaml does not declare (``discard``,
message size and per-subject limits, metadata, a limit it does not mention...) stays as it is.
A stream whose retention or storage differ cannot be changed in place, so start-up stops with an
error that says so rather than deleting anybody's data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

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


# Settings of a new stream that routes.yaml leaves undeclared: NATS's own defaults.
_NEW_STREAM_DEFAULTS: dict[str, Any] = {
    "max_age": 0.0,
    "max_bytes": -1,
    "max_msgs": -1,
    "num_replicas": 1,
    "duplicate_window": 120.0,
}
_FIXED = ("retention", "storage")  # cannot change in place
_DURATIONS = ("max_age", "duplicate_window")
_YAML_NAME = {"num_replicas": "replicas"}


def declared_settings(spec: StreamSpec) -> dict[str, Any]:
    """The :class:`StreamConfig` fields routes.yaml sets for ``spec``, in a fixed order: subjects,
    retention and storage always, the others only when declared."""
    settings: dict[str, Any] = {
        "subjects": list(spec.subjects),
        "retention": RetentionPolicy(spec.retention),
        "storage": StorageType(spec.storage),
    }
    optional = (
        ("description", spec.description),
        ("max_age", spec.max_age),
        ("max_bytes", spec.max_bytes),
        ("max_msgs", spec.max_msgs),
        ("num_replicas", spec.replicas),
        ("duplicate_window", spec.duplicate_window),
    )
    settings.update((key, value) for key, value in optional if value is not None)
    return settings


def stream_config(spec: StreamSpec) -> StreamConfig:
    """The nats-py configuration of a new stream: the declared settings, defaults for the rest."""
    return StreamConfig(name=spec.name, **(_NEW_STREAM_DEFAULTS | declared_settings(spec)))


def _name(value: object) -> str:
    # nats-py returns enums for what it sends but plain strings for what the server reports.
    return str(value.value) if isinstance(value, Enum) else str(value)


def _same(key: str, want: Any, have: Any) -> bool:
    if key == "subjects":
        return sorted(want) == sorted(have or [])
    if key in _DURATIONS:
        return abs(float(want) - float(have or 0)) <= 1e-6
    return bool(want == have)


def _differences(
    declared: dict[str, Any], have: StreamConfig
) -> tuple[list[str], dict[str, Any], list[str]]:
    """(fixed settings that differ, declared settings to change, their descriptions)."""
    fixed: list[str] = []
    for key in _FIXED:
        old, new = _name(getattr(have, key)), _name(declared[key])
        if old != new:
            fixed.append(f"{key} {old} -> {new}")
    update: dict[str, Any] = {}
    changes: list[str] = []
    for key, want in declared.items():
        old = getattr(have, key)
        if key in _FIXED or _same(key, want, old):
            continue
        update[key] = want
        unit = "s" if key in _DURATIONS else ""
        changes.append(f"{_YAML_NAME.get(key, key)} {old}{unit} -> {want}{unit}")
    return fixed, update, changes


async def provision_streams(js: JetStreamContext, specs: Iterable[StreamSpec]) -> list[Provisioned]:
    """Create or update every declared stream; raise :class:`ProvisionError` on a conflict."""
    done: list[Provisioned] = []
    for spec in specs:
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
                await js.add_stream(stream_config(spec))
            except Exception as exc:
                raise ProvisionError(f"cannot create stream {spec.name}: {exc}") from None
            done.append(Provisioned(spec.name, "created"))
            continue
        fixed, update, changes = _differences(declared_settings(spec), info.config)
        if fixed:
            raise ProvisionError(
                f"stream {spec.name} exists with {'; '.join(fixed)}; these cannot be changed in "
                "place: delete the stream or change routes.yaml"
            )
        if not changes:
            done.append(Provisioned(spec.name, "unchanged"))
            continue
        try:
            # From the server's configuration: settings cerouter does not manage are kept.
            await js.update_stream(dataclasses.replace(info.config, **update))
        except Exception as exc:
            raise ProvisionError(f"cannot update stream {spec.name}: {exc}") from None
        done.append(Provisioned(spec.name, "updated", tuple(changes)))
    return done
