"""Printers: rows, operator and farm changes with their printer.changed events."""
