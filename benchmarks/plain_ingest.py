"""THE BASELINE of benchmarks/ingest.py, not product code: the webhook receiver a user would
write instead of Forma3D — Starlette + uvicorn + asyncpg, verify Shopify's HMAC, insert the raw
body, answer 200 after the commit.

    .venv/bin/python benchmarks/plain_ingest.py --port 8401 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = os.environ.get("PLAIN_SECRET", "bench-webhook-secret").encode()
TABLE = """CREATE TABLE IF NOT EXISTS plain_webhooks (
    id bigserial PRIMARY KEY, delivery_key text UNIQUE NOT NULL, topic text NOT NULL,
    body bytea NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"""


def build(database_url: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(database_url, min_size=10, max_size=10)
        await app.state.pool.execute(TABLE)
        yield
        await app.state.pool.close()

    async def shopify(request: Request) -> Response:
        body = await request.body()
        digest = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(digest, request.headers.get("x-shopify-hmac-sha256", "")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        key = request.headers.get("x-shopify-webhook-id", "")
        await request.app.state.pool.execute(
            "INSERT INTO plain_webhooks (delivery_key, topic, body) VALUES ($1, $2, $3)"
            " ON CONFLICT (delivery_key) DO NOTHING",
            key, request.headers.get("x-shopify-topic", ""), body)
        return JSONResponse({"status": "accepted"})

    return Starlette(routes=[Route("/webhooks/shopify", shopify, methods=["POST"])],
                     lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8401)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    uvicorn.run(build(args.database_url), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
