"""Messaging: typed messages to entities, their envelope, and the live channel.

Importing this package registers every message type (one module per target kind).
"""

from forma3d.messaging import fleet, gridflock, order, printer, stock, tenant  # noqa: F401
