"""The retriever pipeline: stages, their registry, templating, fusion and the runner."""
