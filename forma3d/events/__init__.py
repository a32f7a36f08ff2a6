"""Events: the one catalog of domain events (names, versions, payloads, envelope)."""
