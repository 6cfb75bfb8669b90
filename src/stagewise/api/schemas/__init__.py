"""Wire models: request bodies and the public shapes of our records."""
