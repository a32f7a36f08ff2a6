"""Generic pieces of the pure domain core (state machines, shared pipeline states): no I/O."""
