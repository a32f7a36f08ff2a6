"""Shipping: shipment lifecycle, Sendcloud status mapping and parcel weight. No I/O."""
