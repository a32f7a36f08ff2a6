"""Application handlers: the entities' state and their message handlers, plain async functions
of a state, a message and (for commands) a connection; runnable without Ray."""
