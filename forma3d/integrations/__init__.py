"""Clients and webhook checks for Shopify, SimplyPrint and Sendcloud."""
