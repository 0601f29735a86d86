"""Metrics: feature extractors computed once, and a registry of scores over them."""
