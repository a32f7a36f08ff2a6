"""Importing this module registers every /api/v1 route module on the shared router."""

from forma3d.http.routes import (
    dead_letters,
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
    webhooks,
)

__all__ = ["dead_letters", "events", "files", "gridflock", "live", "mappings", "orders",
           "print_jobs", "printers", "queue", "shipments", "stock", "tenant", "webhooks"]
