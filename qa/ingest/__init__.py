"""Ingest stage: seed files to documents, chunks and sentences."""
