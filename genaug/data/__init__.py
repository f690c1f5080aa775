"""Datasets: built-in data (mnist5k, digits, photos) and adapters for torchvision datasets."""

from .builtin import BUILTIN_NAMES, ImageTensorDataset, from_dataset, load_builtin

__all__ = ["BUILTIN_NAMES", "ImageTensorDataset", "from_dataset", "load_builtin"]
