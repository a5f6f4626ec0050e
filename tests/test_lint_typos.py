"""`routes check` warns about filters on near-misses of core attribute names."""

from __future__ import annotations

from cerouter.config.lint import lint
from cerouter.config.load import parse_config

ROUTES = """version: 1
routes:
  - name: typo
    match: {tpye: com.example.x}
    to: {subject: a}
  - name: extension
    match: {tenant: acme, exact: {type: com.example.y}}
    to: {subject: b}
"""


def test_a_near_miss_of_a_core_attribute_is_a_warning() -> None:
    result = parse_config(ROUTES, check_schemas=False)
    assert result.config is not None
    warnings = [w for w in lint(result.config) if w.code == "attribute-typo"]
    assert [(w.path, w.line) for w in warnings] == [("routes[0].match", 3)]
    assert "did you mean 'type'?" in warnings[0].message
