"""Embeddings, similarity queries and duplicate detection."""
