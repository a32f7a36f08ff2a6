"""Platform plumbing: embedded servers, tenants, API keys."""
