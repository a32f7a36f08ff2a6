"""Local simulators of Shopify, SimplyPrint and Sendcloud (demo mode, training, load tests).

They serve the real services' paths, headers, envelopes and signed webhooks, so the production
clients run against them unchanged. Sandbox-only controls live under ``/_sandbox/``.

Entry points (``sandbox.server``): ``SandboxConfig``, ``build_apps(config)`` for
in-process ASGI use, ``serve_sandboxes(config)`` for loopback ports, ``run(config)`` to block.
"""
