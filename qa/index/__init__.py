"""Index stage: build, store and load the index."""
