"""The /api/v1 router every resource module registers on."""

from __future__ import annotations

from forma3d.http.routing import ApiRouter

API_PREFIX = "/api/v1"
api = ApiRouter()
