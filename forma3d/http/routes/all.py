"""Importing this module registers every /api/v1 route module on the shared router."""

from forma3d.http.routes import (
    access,
    audit,
    dead_letters,
    events,
    files,
    gridflock,
    gridflock_shop,
    integrations,
    live,
    mappings,
    orders,
    people,
    print_jobs,
    printers,
    queue,
    shipments,
    stock,
    tenant,
    webhook_subscriptions,
    webhooks,
)

__all__ = ["access", "audit", "dead_letters", "events", "files", "gridflock", "gridflock_shop",
           "integrations", "live", "mappings", "orders", "people", "print_jobs", "printers",
           "queue", "shipments", "stock", "tenant", "webhook_subscriptions", "webhooks"]
from forma3d.http.routes import floor, overview  # noqa: F401  (dashboard reads)
