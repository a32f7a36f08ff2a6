"""Every metric for cluster admins, defined once: names, tags, descriptions and buckets.

The metrics go through Ray's metrics API (`ray.util.metrics`), so every Ray process that records
one (Serve replicas, entity hosts, the outbox dispatcher, the slicer pool and its tasks) has it
scraped from its node's Prometheus endpoint (the node's `metrics_export_port`) and shown in the
Ray dashboard's Grafana; `deploy/grafana/forma3d.json` is a dashboard of them. Prometheus sees
each under Ray's prefix: `forma3d_webhooks` is `ray_forma3d_webhooks_total` (a counter).

Recording never fails the caller: outside a Ray process (plain tests, the CLI) it does nothing,
and a metrics error is logged once and swallowed.

Depths (an entity host's mailbox, the slicer pool's queue) are histograms of the depth each
arrival found, not gauges: a burst between two scrapes still shows in them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

Kind = Literal["counter", "gauge", "histogram"]

LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
DEPTH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024]
TOOL_BUCKETS = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0]


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Kind
    description: str
    tags: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


SPECS: tuple[Spec, ...] = (
    Spec("forma3d_webhooks", "counter",
         "Inbound webhook deliveries by source and outcome (accepted, duplicate, refused, "
         "error: we failed and the sender retries).",
         ("source", "outcome")),
    Spec("forma3d_outbox_backlog", "gauge",
         "Outbox messages not yet delivered (pending or waiting for a retry)."),
    Spec("forma3d_outbox_oldest_pending_seconds", "gauge",
         "Age of the oldest outbox message not yet delivered, in seconds (0 when none)."),
    Spec("forma3d_outbox_dead_letters", "gauge",
         "Outbox messages refused for good (done with an error), waiting for an operator."),
    Spec("forma3d_entity_activations", "counter",
         "Entities activated (their state loaded from PostgreSQL) per entity host.", ("host",)),
    Spec("forma3d_entities_active", "gauge",
         "Entities active (in memory) per entity host.", ("host",)),
    Spec("forma3d_entity_mailbox_depth", "histogram",
         "Messages in an entity host (waiting for their entity or being handled) that each "
         "arriving message found, itself included.", ("host",), tuple(DEPTH_BUCKETS)),
    Spec("forma3d_orders", "gauge", "Orders by status (all tenants).", ("status",)),
    Spec("forma3d_print_jobs", "gauge", "Print jobs by status (all tenants).", ("status",)),
    Spec("forma3d_dispatch_decisions", "counter",
         "What a printer decided when asked to take work (started, busy, no matching job, ...).",
         ("decision",)),
    Spec("forma3d_slicer_queue_depth", "histogram",
         "Plates in the slicer pool (waiting for a slot or running) that each arriving plate "
         "found, itself included.", (), tuple(DEPTH_BUCKETS)),
    Spec("forma3d_slicer_tool_seconds", "histogram",
         "Seconds one plate task took (geometry tool, and the slicer for G-code), by kind.",
         ("kind",), tuple(TOOL_BUCKETS)),
    Spec("forma3d_integration_call_seconds", "histogram",
         "Latency of one HTTP exchange with an external service, by service.", ("service",),
         tuple(LATENCY_BUCKETS)),
    Spec("forma3d_integration_errors", "counter",
         "Failed HTTP exchanges with an external service, by service and error class.",
         ("service", "error")),
)
BY_NAME = {spec.name: spec for spec in SPECS}

_made: dict[str, Any] = {}
_broken = False


def _metric(name: str) -> Any | None:
    """The Ray metric of this process (made on first use), or None outside Ray."""
    global _broken
    if _broken:
        return None
    found = _made.get(name)
    if found is not None:
        return found
    try:
        import ray
        from ray.util import metrics

        if not ray.is_initialized():
            return None
        spec = BY_NAME[name]
        if spec.kind == "counter":
            found = metrics.Counter(spec.name, spec.description, spec.tags)
        elif spec.kind == "gauge":
            found = metrics.Gauge(spec.name, spec.description, spec.tags)
        else:
            found = metrics.Histogram(spec.name, spec.description, list(spec.buckets),
                                      spec.tags)
    except Exception:
        _broken = True
        log.exception("metrics are off in this process")
        return None
    _made[name] = found
    return found


def _record(name: str, value: float, tags: dict[str, str] | None) -> None:
    metric = _metric(name)
    if metric is None:
        return
    try:
        kind = BY_NAME[name].kind
        if kind == "counter":
            metric.inc(value, tags)
        elif kind == "gauge":
            metric.set(value, tags)
        else:
            metric.observe(value, tags)
    except Exception:
        log.warning("metric %s not recorded", name, exc_info=True)


def inc(name: str, value: float = 1.0, **tags: str) -> None:
    _record(name, value, tags or None)


def set_gauge(name: str, value: float, **tags: str) -> None:
    _record(name, value, tags or None)


def observe(name: str, value: float, **tags: str) -> None:
    _record(name, value, tags or None)


def prometheus_name(spec: Spec) -> str:
    """The name Prometheus sees (Ray prefixes `ray_`; counters end in `_total`)."""
    return f"ray_{spec.name}" + ("_total" if spec.kind == "counter" else "")
