"""Importing this module registers every /api/v1 route module on the shared router."""

from forma3d.http.routes import (
    audit,
    events,
    files,
    gridflock,
    live,
    mappings,
    orders,
    print_jobs,
    printers,
    queue,
    shipments,
    stock,
    tenant,
    webhook_subscriptions,
    webhooks,
)

__all__ = ["audit", "events", "files", "gridflock", "live", "mappings", "orders", "print_jobs",
           "printers", "queue", "shipments", "stock", "tenant", "webhook_subscriptions",
           "webhooks"]
