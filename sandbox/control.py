"""Sandbox-only control routes shared by the three simulators (clock, webhooks, deliveries).

They live under ``/_sandbox/`` so nothing can mistake them for the real services' API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.clock import SimClock
from sandbox.webhooks import WebhookDispatcher


async def read_json(request: Request) -> Any:
    """The request body as JSON; an empty body is an empty object."""
    raw = await request.body()
    if not raw.strip():
        return {}
    return json.loads(raw)


def control_routes(
    clock: SimClock,
    dispatcher: WebhookDispatcher,
    get_targets: Callable[[], list[str]],
) -> list[Route]:
    """Routes shared by all three apps:

    - ``GET/POST /_sandbox/clock``: ``{"advance": s, "speedup": x}``
    - ``GET/POST /_sandbox/webhooks``: ``{"loss_rate": 0.3}``; answers the registered targets
      (webhooks are registered through each service's own API, as the product does)
    - ``GET /_sandbox/webhooks/deliveries?outcome=&topic=&since=<id>&limit=``
    - ``POST /_sandbox/webhooks/deliveries/{id}/replay``: same bytes again (a duplicate)
    """

    async def clock_state(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            try:
                if "speedup" in body:
                    clock.set_speedup(float(body["speedup"]))
                if "advance" in body:
                    clock.advance(float(body["advance"]))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {"now": clock.now().isoformat(), "elapsed": clock.elapsed(), "speedup": clock.speedup}
        )

    async def webhooks(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            try:
                if "loss_rate" in body:
                    dispatcher.set_loss_rate(float(body["loss_rate"]))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        state = {
            "targets": get_targets(),
            "loss_rate": dispatcher.loss_rate,
            "pending": dispatcher.pending,
        }
        return JSONResponse(state)

    async def deliveries(request: Request) -> Response:
        params = request.query_params
        outcome = params.get("outcome")
        topic = params.get("topic")
        try:
            since = int(params.get("since", "0"))
            limit = int(params["limit"]) if "limit" in params else None
        except ValueError:
            return JSONResponse({"error": "since and limit are integers"}, status_code=400)
        rows = [
            d.as_dict()
            for d in dispatcher.log
            if d.id > since
            and (outcome is None or d.outcome == outcome)
            and (topic is None or d.topic == topic)
        ]
        if limit is not None:
            rows = rows[-limit:] if limit > 0 else []
        return JSONResponse({"deliveries": rows})

    async def replay(request: Request) -> Response:
        body = await read_json(request)
        try:
            delivery = dispatcher.replay(
                int(request.path_params["delivery_id"]), body.get("target")
            )
        except KeyError:
            return JSONResponse({"error": "delivery not found"}, status_code=404)
        return JSONResponse({"delivery": delivery.as_dict()}, status_code=202)

    return [
        Route("/_sandbox/clock", clock_state, methods=["GET", "POST"]),
        Route("/_sandbox/webhooks", webhooks, methods=["GET", "POST"]),
        Route("/_sandbox/webhooks/deliveries", deliveries, methods=["GET"]),
        Route("/_sandbox/webhooks/deliveries/{delivery_id:int}/replay", replay, methods=["POST"]),
    ]
