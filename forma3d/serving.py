"""The Ray Serve deployment around the Starlette app (built on each replica)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ray import serve

from forma3d.http.app import build_app

# The app is async end to end, so one replica serves many requests at once. Serve's default of 5
# in flight made its router back off (up to 1 s) under webhook bursts: measured 6.7 accepted/s at
# 64 concurrent senders, against 124/s at 4 (benchmarks/webhooks.py).
MAX_ONGOING_REQUESTS = 256
# Past this many waiting, answer 503 at once: Shopify and Sendcloud retry, and nothing is lost.
MAX_QUEUED_REQUESTS = 2048


@serve.deployment(name="forma3d-api", ray_actor_options={"num_cpus": 0},
                  max_ongoing_requests=MAX_ONGOING_REQUESTS,
                  max_queued_requests=MAX_QUEUED_REQUESTS)
@serve.ingress(build_app)
class Api:
    """Ingress deployment: requests go to the Starlette app; each replica has its own pools."""

    def __init__(self) -> None:
        hot_path_priority()


def hot_path_priority() -> None:
    """Ray starts its workers at nice 15; the replica answering webhooks takes the normal
    priority back where the OS allows it, so during a burst the entity hosts and the dispatcher
    (still at 15) create orders with what the hot path leaves, and catch up after it."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def application(replicas: int = 1, env: dict[str, str] | None = None) -> Any:
    options: dict[str, Any] = {"num_cpus": 0}
    if env:
        options["runtime_env"] = {"env_vars": env}
    return Api.options(  # type: ignore[attr-defined]
        num_replicas=replicas, ray_actor_options=options).bind()
