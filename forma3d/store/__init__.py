"""The store: the only code that writes SQL. One module per aggregate; every status change is one
function that checks the lifecycle's machine, updates conditionally and records the event, all
in the caller's transaction (see docs/architecture.md)."""
