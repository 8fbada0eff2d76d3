"""`GET /metrics`: the Prometheus text format, every figure read from the database at the
scrape (models.reporting.metrics). The guard lets through only the metrics token, or, with
REELROUTE_METRICS_LOOPBACK, callers on the loopback address; without either it is off."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from reelroute.models.reporting import Family, HistogramFamily, read_metrics
from reelroute.models.store import session_scope
from reelroute.ui.api.common import engine_of, settings_of
from reelroute.ui.api.guard import metrics_caller_allowed

router = APIRouter()


class _Read(Collector):
    """The families read for one scrape."""

    def __init__(self, families: list[Family | HistogramFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            if isinstance(family, HistogramFamily):
                histogram = HistogramMetricFamily(family.name, family.help, labels=family.labels)
                for labels, buckets, total in family.series:
                    histogram.add_metric(
                        list(labels),
                        [(_le(bound), count) for bound, count in buckets],
                        total,
                    )
                yield histogram
                continue
            made: GaugeMetricFamily | CounterMetricFamily
            if family.kind == "counter":
                made = CounterMetricFamily(family.name, family.help, labels=family.labels)
            else:
                made = GaugeMetricFamily(family.name, family.help, labels=family.labels)
            for labels, value in family.samples:
                made.add_metric(list(labels), value)
            yield made


def _le(bound: float) -> str:
    """A bucket's upper bound as Prometheus writes it (`60.0`, `+Inf`)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def render(families: list[Family | HistogramFamily]) -> bytes:
    """The families in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Read(families))
    return generate_latest(registry)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Every metric, as the database says now (checked here too, not only by the guard's match
    of the path: a route mounted elsewhere, or a guard left out, still asks)."""
    headers = {key.lower(): value for key, value in request.headers.items()}
    client = request.client.host if request.client else "unknown"
    if not metrics_caller_allowed(settings_of(request), client, headers):
        raise HTTPException(401, "send Authorization: Bearer <the metrics token>")
    with session_scope(engine_of(request)) as session:
        families = read_metrics(session)
    return Response(render(families), media_type=CONTENT_TYPE_LATEST)
