"""Stock: the immutable ledger of stock movements per SKU."""
