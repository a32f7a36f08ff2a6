"""Forma3D: print-farm order orchestration on Ray."""
