"""Shipments: the parcel of an order and its carrier status (written by the order entity)."""
