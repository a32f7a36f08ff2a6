"""Print files: content-addressed G-code per tenant, and where the farm holds each."""
