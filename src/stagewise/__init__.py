"""Stagewise: a self-hosted retrieval engine that speaks the Mixpeek API."""

__version__ = "0.1.0"
