"""HTTP API: the Starlette app, request handling and the shared list query language."""
