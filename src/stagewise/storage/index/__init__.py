"""SearchIndex implementations over the Qdrant engine."""
