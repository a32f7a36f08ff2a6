"""The Ray Serve deployment around the Starlette app (built on each replica)."""

from __future__ import annotations

from typing import Any

from ray import serve

from forma3d.http.app import build_app


@serve.deployment(name="forma3d-api", ray_actor_options={"num_cpus": 0})
@serve.ingress(build_app)
class Api:
    """Ingress deployment: requests go to the Starlette app; each replica has its own pools."""


def application(replicas: int = 1, env: dict[str, str] | None = None) -> Any:
    options: dict[str, Any] = {"num_cpus": 0}
    if env:
        options["runtime_env"] = {"env_vars": env}
    return Api.options(  # type: ignore[attr-defined]
        num_replicas=replicas, ray_actor_options=options).bind()
