"""Storage behind small protocols: a metadata store (source of truth) and a search index."""
