"""Loading routes.yaml: read, structure-check, build and cross-check it, with located errors.

:func:`load_config` raises the first :class:`~cerouter.errors.ConfigError` (in file order);
:func:`check_config` returns them all, with the lint warnings and the loaded schema registry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from cerouter.config.build import Builder
from cerouter.config.model import ConfigCheck, RouterConfig
from cerouter.config.structure import check_structure
from cerouter.config.yaml_tree import YNode, format_path, load_yaml
from cerouter.errors import CerouterError, ConfigError
from cerouter.validation.registry import SchemaRegistry

_TYPE_PROBLEM = re.compile(r"schemas\.types: '([^']*)' maps to")


def load_config(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    resolve_env: bool = True,
    check_schemas: bool = True,
) -> RouterConfig:
    """Load and check a routes file; raise the first :class:`ConfigError` (in file order).

    ``resolve_env=False`` keeps ``${ENV}`` references as written (for offline tools);
    ``check_schemas=False`` skips loading the schema directory.
    """
    result = check_config(
        path, environ=environ, resolve_env=resolve_env, check_schemas=check_schemas
    )
    if result.errors or result.config is None:
        raise result.errors[0] if result.errors else ConfigError("invalid", file=str(path))
    return result.config


def check_config(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    resolve_env: bool = True,
    check_schemas: bool = True,
) -> ConfigCheck:
    """Load a routes file and report every error found (never raises :class:`ConfigError`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return ConfigCheck(None, (ConfigError(f"cannot read: {exc.strerror}", file=str(path)),))
    except UnicodeDecodeError:
        return ConfigCheck(None, (ConfigError("not UTF-8 text", file=str(path)),))
    return parse_config(
        text,
        file=str(path),
        path=path,
        environ=environ,
        resolve_env=resolve_env,
        check_schemas=check_schemas,
    )


def parse_config(
    text: str,
    *,
    file: str = "routes.yaml",
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    resolve_env: bool = True,
    check_schemas: bool = True,
) -> ConfigCheck:
    """Check routes.yaml text; ``file`` names it in messages, ``path`` anchors relative paths."""
    path = Path(file) if path is None else path
    try:
        root = load_yaml(text, file)
    except ConfigError as exc:
        return ConfigCheck(None, (exc,))
    if root is None:
        message = "the file is empty; it needs at least 'version: 1' and 'routes'"
        return ConfigCheck(None, (ConfigError(message, file=file, line=1),))
    issues = check_structure(root)
    if issues:
        errors = tuple(_located(file, i.line, i.path, i.message) for i in issues)
        return ConfigCheck(None, errors)
    env = os.environ if environ is None else environ
    builder = Builder(file, path.parent, env, resolve_env=resolve_env)
    config = builder.build(root, path)
    registry: SchemaRegistry | None = None
    if config is not None and check_schemas:
        registry = _check_schema_refs(builder, config, root)
    errors = tuple(sorted(builder.errors, key=lambda e: e.line or 0))
    return ConfigCheck(
        None if errors else config, errors, tuple(builder.warnings), None if errors else registry
    )


def _located(file: str, line: int, path: tuple[str | int, ...], message: str) -> ConfigError:
    return ConfigError(message, file=file, line=line, path=format_path(path))


def _check_schema_refs(
    builder: Builder, config: RouterConfig, root: YNode
) -> SchemaRegistry | None:
    schemas_node = root.get("schemas")
    line = root.key_lines.get("schemas", 1)
    if schemas_node is not None and schemas_node.get("directory") is not None:
        line = schemas_node.key_lines["directory"]
    elif not config.schemas.directory.is_dir() and not any(r.schema for r in config.routes):
        # Neither declared nor present: a routes file without schemas checks envelopes only.
        return None
    try:
        registry = SchemaRegistry.load(config.schemas)
    except CerouterError as exc:
        # One problem per line; those about schemas.types point at the mapping's own line.
        type_lines = {ref_path: ref_line for _, ref_line, ref_path in builder.schema_refs}
        for problem in str(exc).splitlines():
            where, path = line, "schemas"
            m = _TYPE_PROBLEM.match(problem)
            if m is not None:
                path = format_path(("schemas", "types", m.group(1)))
                where = type_lines.get(path, line)
                problem = problem.removeprefix("schemas.types: ")
            builder.errors.append(ConfigError(problem, file=builder.file, line=where, path=path))
        return None
    for ref, ref_line, ref_path in builder.schema_refs:
        if not registry.has(ref):
            builder.errors.append(
                ConfigError(
                    f"unknown schema '{ref}' (not found in {config.schemas.directory})",
                    file=builder.file,
                    line=ref_line,
                    path=ref_path,
                )
            )
    return registry


def load_router_config(path: Path) -> tuple[RouterConfig, SchemaRegistry | None]:
    """Load routes.yaml and its schemas for running; raise the first :class:`ConfigError`."""
    result = check_config(path)
    if result.errors or result.config is None:
        raise result.errors[0] if result.errors else ConfigError("invalid", file=str(path))
    return result.config, result.registry
