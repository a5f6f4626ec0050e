"""Warnings about a valid routes.yaml that probably does not do what its author meant.

Checks (each warning carries its ``code``):

* ``shadowed`` — a route can never fire: an earlier ``final`` route matches every event it matches;
* ``never-matches`` — a route's own conditions contradict each other (``type`` is ``a`` and ``b``);
* ``duplicate-destination`` — the same destination twice in a route, or in two routes that can
  match the same event (which is then delivered twice);
* ``uncaptured-subject`` — a stream (or durable queue, or dead-letter) destination renders subjects
  its stream does not capture, so JetStream would reject the publish;
* ``unused-schema`` — a schema file no type mapping or route uses;
* ``routing-loop`` — a destination subject that the router's own ingress consumes again;
* ``attribute-typo`` — a filter or a subject-template placeholder names a near miss of a core
  attribute (``tpye``, ``{sorce}``): legal as an extension, but almost surely a typo.

The analysis is conservative: it reports only what it can prove from ``exact``/``prefix``/
``suffix`` conditions (and conditions that are written identically); CESQL and ``not`` are opaque.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from cerouter.config.model import ConfigWarning, RouterConfig
from cerouter.config.yaml_tree import format_path
from cerouter.routing.filters import (
    AllOf,
    AnyOf,
    Compare,
    DataCompare,
    Filter,
    MatchAll,
    Not,
    conjuncts,
)
from cerouter.routing.model import Destination, Route
from cerouter.routing.subjects import SubjectTemplate
from cerouter.validation.registry import SchemaRegistry


def lint(config: RouterConfig, registry: SchemaRegistry | None = None) -> list[ConfigWarning]:
    """Every warning for ``config``, in file order. ``registry`` enables ``unused-schema``."""
    out: list[ConfigWarning] = []
    out.extend(_shadowed(config.routes))
    out.extend(_duplicates(config.routes))
    out.extend(_uncaptured(config))
    out.extend(_loops(config))
    out.extend(_attribute_typos(config.routes))
    out.extend(_template_typos(config))
    if registry is not None:
        out.extend(_unused_schemas(config, registry))
    return sorted(out, key=lambda w: w.line or 0)


# --------------------------------------------------------------------------- filter logic

Atom = Compare | DataCompare


def _atom_implies(b: Atom, a: Atom) -> bool:
    """Every value satisfying ``b`` satisfies ``a`` (same key assumed)."""
    if b.dialect == "exact":
        return _holds(a, b.value)
    if b.dialect == a.dialect == "prefix":
        return b.value.startswith(a.value)
    if b.dialect == a.dialect == "suffix":
        return b.value.endswith(a.value)
    return False


def _holds(a: Atom, value: str) -> bool:
    if a.dialect == "exact":
        return value == a.value
    if a.dialect == "prefix":
        return value.startswith(a.value)
    return value.endswith(a.value)


def _atoms_contradict(a: Atom, b: Atom) -> bool:
    """No value satisfies both (same key assumed)."""
    if a.dialect == "exact":
        return not _holds(b, a.value)
    if b.dialect == "exact":
        return not _holds(a, b.value)
    if a.dialect == b.dialect == "prefix":
        return not (a.value.startswith(b.value) or b.value.startswith(a.value))
    if a.dialect == b.dialect == "suffix":
        return not (a.value.endswith(b.value) or b.value.endswith(a.value))
    return False


def _key(f: Filter) -> str | None:
    return f.key if isinstance(f, Compare | DataCompare) else None


def _options(f: Filter) -> list[Atom] | None:
    """``f`` as a disjunction of atoms on one key, or ``None``."""
    if isinstance(f, Compare | DataCompare):
        return [f]
    if isinstance(f, AnyOf):
        atoms = [c for c in f.filters if isinstance(c, Compare | DataCompare)]
        if len(atoms) == len(f.filters) and len({a.key for a in atoms}) == 1:
            return atoms
    return None


def _implies(b: Filter, a: Filter) -> bool:
    """Every event matching condition ``b`` matches condition ``a`` (conservative)."""
    if b == a:
        return True
    bs, as_ = _options(b), _options(a)
    if bs is None or as_ is None or bs[0].key != as_[0].key:
        return False
    return all(any(_atom_implies(x, y) for y in as_) for x in bs)


def filter_implies(specific: Filter, general: Filter) -> bool:
    """``True`` when every event matching ``specific`` provably matches ``general``."""
    if isinstance(general, MatchAll):
        return True
    terms = conjuncts(specific)
    return all(any(_implies(t, g) for t in terms) for g in conjuncts(general))


def _contradiction(x: Filter, y: Filter) -> bool:
    xs, ys = _options(x), _options(y)
    if xs is None or ys is None or xs[0].key != ys[0].key:
        return False
    return all(_atoms_contradict(a, b) for a in xs for b in ys)


def filters_disjoint(a: Filter, b: Filter) -> bool:
    """``True`` when no event can match both filters (conservative)."""
    return any(_contradiction(x, y) for x in conjuncts(a) for y in conjuncts(b))


def unsatisfiable(f: Filter) -> tuple[Filter, Filter] | None:
    """Two conditions of ``f`` that contradict each other, if any."""
    terms = conjuncts(f)
    for i, x in enumerate(terms):
        for y in terms[i + 1 :]:
            if _contradiction(x, y):
                return x, y
    return None


# --------------------------------------------------------------------------- checks


def _route_path(i: int, *rest: str | int) -> str:
    return format_path(("routes", i, *rest))


def _shadowed(routes: tuple[Route, ...]) -> Iterable[ConfigWarning]:
    for j, route in enumerate(routes):
        clash = unsatisfiable(route.match)
        if clash is not None:
            yield ConfigWarning(
                "never-matches",
                f"route '{route.name}' can never match: {clash[0]} contradicts {clash[1]}",
                route.line,
                _route_path(j, "match"),
            )
            continue
        for earlier in routes[:j]:
            if earlier.final and filter_implies(route.match, earlier.match):
                yield ConfigWarning(
                    "shadowed",
                    f"route '{route.name}' can never fire: the earlier final route "
                    f"'{earlier.name}' (line {earlier.line}) matches every event it matches",
                    route.line,
                    _route_path(j),
                )
                break


def _identity(d: Destination) -> tuple[str, str, str | None, str | None]:
    return (d.kind, d.subject_template.source, d.stream, d.queue)


def _duplicates(routes: tuple[Route, ...]) -> Iterable[ConfigWarning]:
    for j, route in enumerate(routes):
        seen: dict[tuple[str, str, str | None, str | None], int] = {}
        for k, dest in enumerate(route.to):
            ident = _identity(dest)
            if ident in seen:
                yield ConfigWarning(
                    "duplicate-destination",
                    f"{dest.describe()} is listed twice in route '{route.name}' "
                    f"(also to[{seen[ident]}]); each event is sent twice",
                    dest.line or route.line,
                    _route_path(j, "to", k),
                )
                continue
            seen[ident] = k
            for i, earlier in enumerate(routes[:j]):
                if earlier.final or filters_disjoint(earlier.match, route.match):
                    continue
                same = [m for m, d in enumerate(earlier.to) if _identity(d) == ident]
                if same:
                    yield ConfigWarning(
                        "duplicate-destination",
                        f"{dest.describe()} is also a destination of route '{earlier.name}' "
                        f"({_route_path(i, 'to', same[0])}); an event matching both routes is "
                        "sent twice",
                        dest.line or route.line,
                        _route_path(j, "to", k),
                    )
                    break


def _all_destinations(config: RouterConfig) -> Iterable[tuple[Destination, str, int]]:
    for j, route in enumerate(config.routes):
        for k, dest in enumerate(route.to):
            yield dest, _route_path(j, "to", k), dest.line or route.line
    unrouted = config.unrouted.destination
    if unrouted is not None:
        yield unrouted, "unrouted", unrouted.line


def _uncaptured(config: RouterConfig) -> Iterable[ConfigWarning]:
    for dest, path, line in _all_destinations(config):
        if dest.stream is None:
            continue
        problem = _capture_problem(config, dest.stream, dest.subject_template)
        if problem:
            yield ConfigWarning("uncaptured-subject", problem, line, path)
    dl = config.deadletter
    problem = _capture_problem(config, dl.stream, dl.subject)
    if problem:
        yield ConfigWarning("uncaptured-subject", problem, dl.line or None, "deadletter")


def _capture_problem(config: RouterConfig, stream_name: str, template: SubjectTemplate) -> str:
    stream = config.stream(stream_name)
    if stream is None or any(template.covered_by(s) for s in stream.subjects):
        return ""
    others = [
        s.name
        for s in config.streams
        if s.name != stream_name and any(template.covered_by(p) for p in s.subjects)
    ]
    elsewhere = f"; it belongs to stream '{others[0]}'" if others else ""
    listed = ", ".join(stream.subjects)
    if any(template.overlaps(s) for s in stream.subjects):
        return (
            f"stream '{stream_name}' (subjects: {listed}) captures only some of the subjects "
            f"'{template}' renders; publishing the others fails{elsewhere}"
        )
    return (
        f"stream '{stream_name}' (subjects: {listed}) does not capture subject '{template}'; "
        f"publishing fails{elsewhere}"
    )


def _ingress_patterns(config: RouterConfig) -> list[str]:
    patterns: list[str] = []
    if config.ingress.core is not None:
        patterns.extend(config.ingress.core.subjects)
    for consumer in config.ingress.jetstream:
        if consumer.subjects:
            patterns.extend(consumer.subjects)
        else:
            stream = config.stream(consumer.stream)
            patterns.extend(stream.subjects if stream is not None else ())
    return patterns


def _loops(config: RouterConfig) -> Iterable[ConfigWarning]:
    patterns = _ingress_patterns(config)
    targets = list(_all_destinations(config))
    targets.append(
        (
            Destination("stream", config.deadletter.subject, stream=config.deadletter.stream),
            "deadletter",
            config.deadletter.line,
        )
    )
    for dest, path, line in targets:
        hits = [p for p in patterns if dest.subject_template.overlaps(p)]
        if hits:
            yield ConfigWarning(
                "routing-loop",
                f"subject '{dest.subject_template}' is consumed again by ingress '{hits[0]}': "
                "events sent there come back to the router (a loop)",
                line or None,
                path,
            )


def _unused_schemas(config: RouterConfig, registry: SchemaRegistry) -> Iterable[ConfigWarning]:
    refs = [r.schema for r in config.routes if r.schema]
    for schema in registry.unused(refs):
        yield ConfigWarning(
            "unused-schema",
            f"schema '{schema.relpath}' is not mapped to any event type or used by a route "
            "(only events whose dataschema names its $id reach it)",
            None,
            "schemas",
        )


# --------------------------------------------------------------------------- attribute typos

_CORE_ATTRIBUTES = (
    "id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time",
)  # fmt: skip


def _compared_attributes(f: Filter) -> Iterable[str]:
    if isinstance(f, Compare):
        yield f.attribute
    elif isinstance(f, AllOf | AnyOf):
        for part in f.filters:
            yield from _compared_attributes(part)
    elif isinstance(f, Not):
        yield from _compared_attributes(f.filter)


def near_miss(name: str) -> str | None:
    """The core attribute ``name`` is probably a typo of (``tpye`` → ``type``), else ``None``."""
    if name in _CORE_ATTRIBUTES:
        return None
    close = difflib.get_close_matches(name, _CORE_ATTRIBUTES, n=1, cutoff=0.75)
    return close[0] if close else None


def _attribute_typos(routes: tuple[Route, ...]) -> Iterable[ConfigWarning]:
    """A filter on ``tpye`` is legal (an extension could be called that) but almost surely a typo:
    the route would never match. Names one edit away from a core attribute are reported."""
    for i, route in enumerate(routes):
        for name in sorted(set(_compared_attributes(route.match))):
            if (meant := near_miss(name)) is not None:
                yield ConfigWarning(
                    "attribute-typo",
                    f"{name!r} is not a CloudEvents core attribute (did you mean {meant!r}?); "
                    f"the route only matches events with an extension named {name!r}",
                    route.line or None,
                    _route_path(i, "match"),
                )


def _template_typos(config: RouterConfig) -> Iterable[ConfigWarning]:
    """``"orders.{tpye}"`` is legal (an extension could be called that) but almost surely a typo:
    every event would render ``orders._``. Placeholders one edit from a core attribute are
    reported."""
    for dest, path, line in _all_destinations(config):
        template = dest.subject_template
        for name in sorted(template.names):
            if (meant := near_miss(name)) is not None:
                yield ConfigWarning(
                    "attribute-typo",
                    f"placeholder {{{name}}} in subject {template.source!r} is not a CloudEvents "
                    f"core attribute (did you mean {{{meant}}}?); events without an extension "
                    f"named {name!r} render it as '_'",
                    line or None,
                    path,
                )
