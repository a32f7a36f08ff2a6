"""Product mappings and their parts: which print files make one unit of a SKU."""
