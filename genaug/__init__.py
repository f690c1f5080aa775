"""genaug: batched, fused, reproducible data augmentation for PyTorch."""

__version__ = "0.1.0"
