"""A job's tags as SimplyPrint's queue/AddItem states them."""

from __future__ import annotations

from forma3d.domain.printing.matching import queue_requirements

MODELS = {"Original Prusa MK4": 10, "X1 Carbon": 400}


def test_models_nozzle_and_first_slot_material_become_additem_fields() -> None:
    wanted = queue_requirements(["model:original prusa mk4", "MODEL:X1 Carbon", "nozzle:0.60",
                                 "material:PETG", "color:Black", "engraved"], MODELS)
    assert wanted.for_models == (10, 400)
    assert wanted.tags == {"nozzle": 0.6, "material": [{"ext": 0, "type": "PETG",
                                                        "color": "Black"}]}
    assert wanted.unknown_models == ()


def test_unknown_models_are_named_and_untagged_jobs_ask_for_nothing() -> None:
    wanted = queue_requirements(["model:Ender 3", "filament:PLA/"], MODELS)
    assert (wanted.for_models, wanted.unknown_models) == ((), ("Ender 3",))
    assert wanted.tags == {"material": [{"ext": 0, "type": "PLA"}]}
    assert queue_requirements([], MODELS).tags == {}
