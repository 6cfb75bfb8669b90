"""Text embedders behind the Embedder protocol."""
