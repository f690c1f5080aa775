"""Built-in datasets: exact mnist5k split, digits/photos, ImageFolder and torchvision datasets."""

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.data import ImageTensorDataset, from_dataset, load_builtin


def test_mnist5k_split_is_first_400_and_last_100_per_class():
    all_ = load_builtin("mnist5k", "all")  # file order: sorted by class, 500 each
    assert len(all_) == 5000 and torch.equal(all_.labels, torch.arange(10).repeat_interleave(500))
    x, y = all_.images.numpy(), all_.labels.numpy()
    train, test = load_builtin("mnist5k", "train"), load_builtin("mnist5k", "test")
    assert train.images.shape == (4000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (1000, 1, 28, 28)
    assert train.labels.bincount().tolist() == [400] * 10
    assert test.labels.bincount().tolist() == [100] * 10
    for c in range(10):
        rows = np.flatnonzero(y == c)
        want_train, want_test = torch.from_numpy(x[rows[:400]]), torch.from_numpy(x[rows[400:]])
        assert torch.equal(train.images[train.labels == c], want_train)
        assert torch.equal(test.images[test.labels == c], want_test)


def test_dataset_items_and_repr():
    ds = load_builtin("mnist5k", "test")
    img, label = ds[150]
    assert img.shape == (1, 28, 28) and int(label) == 1
    assert "mnist5k" in repr(ds) and ds.num_classes == 10


def test_digits_and_photos():
    tr, te = load_builtin("digits", "train"), load_builtin("digits", "test")
    assert tr.images.shape[1:] == (1, 8, 8) and len(tr) + len(te) == 1797
    assert int(tr.images.max()) == 255 and set(te.labels.tolist()) == set(range(10))
    photos = load_builtin("photos", "all")
    assert photos.images.shape == (2, 3, 427, 640) and photos.classes == ["china", "flower"]


def test_imagefolder_and_torchvision_dataset(tmp_path):
    for cls, value in (("cat", 10), ("dog", 200)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((28, 28, 3), value + i, np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = load_builtin(f"imagefolder:{tmp_path}", "train")
    assert ds.images.shape == (6, 3, 28, 28) and ds.classes == ["cat", "dog"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert int(ds.images[4, 0, 0, 0]) == 201

    from torchvision.datasets import FakeData
    from torchvision.transforms import PILToTensor

    fake = FakeData(size=5, image_size=(1, 28, 28), num_classes=3, transform=PILToTensor())
    wrapped = load_builtin(fake)
    assert wrapped.images.shape == (5, 1, 28, 28)
    assert torch.equal(wrapped.images[2], fake[2][0])


def test_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="name='nope'"):
        load_builtin("nope")
    with pytest.raises(ValueError, match="split='val'"):
        load_builtin("mnist5k", "val")
    with pytest.raises(FileNotFoundError, match="imagefolder"):
        load_builtin(f"imagefolder:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="uint8"):
        ImageTensorDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2))
    bad = [(torch.zeros(1, 4, 4, dtype=torch.uint8), 0), (torch.zeros(1, 5, 5, dtype=torch.uint8), 1)]
    with pytest.raises(ValueError, match="different shapes"):
        from_dataset(bad)
