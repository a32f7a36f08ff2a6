"""The multi-node tier (scripts/test-cluster): a Ray cluster of its own per session, so it runs
in its own pytest process, never beside the session's single-node `ray_runtime`."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.cluster)
