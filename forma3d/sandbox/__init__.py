"""Local simulators of Shopify, SimplyPrint and Sendcloud (demo mode, training, load tests).

They serve the real services' paths, headers, envelopes and signed webhooks, so the production
clients run against them unchanged. Sandbox-only controls live under ``/_sandbox/``.
"""
