"""ganlab: a reproducible GAN lab driven by DVC and tracked with MLflow."""

__version__ = "0.1.0"
