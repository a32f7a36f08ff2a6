"""Forma3D: print-farm order orchestration on Ray."""
__version__ = "0.1.0"
