"""Datasets: download with checksums, on-disk formats, tensors, translation domains."""
