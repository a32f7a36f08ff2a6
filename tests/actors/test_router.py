from collections import Counter

from actors.router import rendezvous


def test_rendezvous_is_stable_and_balanced() -> None:
    keys = [f"printer:{i}" for i in range(8000)]
    placement = [rendezvous(k, 4) for k in keys]
    assert placement == [rendezvous(k, 4) for k in keys]
    counts = Counter(placement)
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 8000 / 4 * 0.85


def test_adding_a_host_moves_only_its_share() -> None:
    keys = [f"tenant:{i}" for i in range(8000)]
    before = {k: rendezvous(k, 4) for k in keys}
    after = {k: rendezvous(k, 5) for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert all(after[k] == 4 for k in moved)  # keys only move to the new host
    assert 0.15 < len(moved) / len(keys) < 0.25  # about 1/5 of them
