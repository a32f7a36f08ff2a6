"""Printing: print-job lifecycle, product mappings and job specs. No I/O."""
