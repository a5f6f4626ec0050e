"""Reading Prometheus metrics in tests: parsed with prometheus_client's own text parser."""

from __future__ import annotations

import httpx
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by sample name and sorted label pairs."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def of_registry(registry: CollectorRegistry | None) -> Samples:
    """The samples a scrape of ``registry`` would show."""
    assert registry is not None, "metrics are off"
    return parse(generate_latest(registry).decode())


async def scrape(url: str) -> tuple[Samples, str]:
    """``GET url`` (a /metrics URL): the parsed samples and the raw text."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text), response.text


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def label_values(samples: Samples) -> set[str]:
    """Every label value in the samples (``le`` bounds aside)."""
    return {v for (_, labels) in samples for k, v in labels if k != "le"}
