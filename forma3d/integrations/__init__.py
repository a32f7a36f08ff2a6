"""Clients and webhook checks for the services we integrate with: Shopify, SimplyPrint, Sendcloud."""
