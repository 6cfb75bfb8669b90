"""Use cases. Keyword-only functions over the stores; no HTTP here."""
