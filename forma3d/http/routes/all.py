"""Importing this module registers every /api/v1 route module on the shared router."""

from forma3d.http.routes import printers, tenant

__all__ = ["printers", "tenant"]
