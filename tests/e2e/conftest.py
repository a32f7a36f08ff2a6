"""The end-to-end tier's names (its fixtures live in tests/stack.py, registered by the root
conftest so the browser tests share them)."""

from tests.stack import SPEEDUP, Farm, connect, sandbox_config

__all__ = ["SPEEDUP", "Farm", "connect", "sandbox_config"]
