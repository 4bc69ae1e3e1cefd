"""Embedding stage: dense vectors and latent-term vectors of questions and passages."""
