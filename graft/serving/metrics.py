"""``/metrics`` in Prometheus' text format (prometheus_client, one registry per server).

Series: ``graft_requests_total{route,status}``, ``graft_request_errors_total{reason}``,
``graft_request_latency_seconds`` (histogram, per route), ``graft_batch_size`` (histogram of images
per model call), ``graft_batch_seconds`` (model time per batch), ``graft_images_total`` and
``graft_requests_in_flight{route}``.

Example:
    >>> m = Metrics()
    >>> m.request("/predict", 200, 0.012); m.batch(4, 0.03)
    >>> b'graft_requests_total{route="/predict",status="200"} 1.0' in m.render()
    True
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

disable_created_metrics()  # no *_created timestamp series: they double the output for no use here

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The server's counters and histograms (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "graft_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.errors = Counter(
            "graft_request_errors", "requests refused or failed, by reason", ["reason"], registry=r
        )
        self.latency = Histogram(
            "graft_request_latency_seconds", "time from request to response", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "graft_batch_size", "images per model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "graft_batch_seconds", "model time per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.images = Counter("graft_images", "images predicted", registry=r)
        self.in_flight = Gauge(
            "graft_requests_in_flight", "requests being answered", ["route"], registry=r
        )

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def error(self, reason: str) -> None:
        self.errors.labels(reason=reason).inc()

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        self.images.inc(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
