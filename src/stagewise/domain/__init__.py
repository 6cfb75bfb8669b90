"""Pydantic domain records with no I/O."""
