"""Importing this module registers every /api/v1 route module on the shared router."""

from forma3d.http.routes import (
    events,
    files,
    gridflock,
    integrations,
    live,
    mappings,
    orders,
    print_jobs,
    printers,
    queue,
    shipments,
    stock,
    tenant,
    webhooks,
)

__all__ = ["events", "files", "gridflock", "integrations", "live", "mappings", "orders",
           "print_jobs", "printers", "queue", "shipments", "stock", "tenant", "webhooks"]
