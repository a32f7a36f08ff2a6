"""Ray actors: entity hosts and the entities they carry, the outbox dispatcher, the slicer pool."""
