"""Route modules, one per resource; each registers its endpoints on the shared API router."""
