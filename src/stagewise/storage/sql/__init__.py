"""SQLAlchemy metadata store: SQLite for the embedded default, PostgreSQL for scale-out."""
