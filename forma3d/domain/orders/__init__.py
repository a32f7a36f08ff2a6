"""Orders: lifecycle states and pure rules (expansion into print jobs, progress). No I/O."""
