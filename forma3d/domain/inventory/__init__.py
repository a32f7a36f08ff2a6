"""Inventory: stock batches, the immutable stock ledger and hybrid fulfilment rules. No I/O."""
