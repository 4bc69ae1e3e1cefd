"""Answering stage: read the retrieved evidence and compose a cited answer."""
