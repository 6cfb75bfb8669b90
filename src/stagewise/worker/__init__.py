"""Ingestion on Celery workers (`stagewise worker`), when STAGEWISE_BROKER_URL is set."""
