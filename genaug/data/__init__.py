"""Datasets: built-in data (mnist5k, digits, photos), adapters for torchvision datasets, and
synthetic data (``SyntheticDataset``, ``MixedDataset``)."""

from .builtin import BUILTIN_NAMES, ImageTensorDataset, from_dataset, load_builtin
from .device_loader import DeviceLoader
from .export import ExportError, ExportResult, export_augmented, export_synthetic, load_export, read_manifest
from .mixed import MixedDataset
from .synthetic import SyntheticDataset

__all__ = ["BUILTIN_NAMES", "DeviceLoader", "ExportError", "ExportResult", "export_augmented", "export_synthetic",
           "load_export", "read_manifest", "ImageTensorDataset", "MixedDataset", "SyntheticDataset", "from_dataset",
           "load_builtin"]
