import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "genaug", max_examples=int(os.environ.get("GENAUG_HYPOTHESIS_EXAMPLES", "25")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("genaug")
torch.set_num_threads(1)  # tests run in parallel processes (pytest -n 2)


@pytest.fixture
def photo() -> torch.Tensor:
    """A smooth float64 RGB image (1, 3, 33, 40) with structure everywhere."""
    g = torch.Generator().manual_seed(0)
    small = torch.rand(1, 3, 6, 7, generator=g, dtype=torch.float64)
    noise = torch.rand(1, 3, 33, 40, generator=g, dtype=torch.float64)
    smooth = torch.nn.functional.interpolate(small, size=(33, 40), mode="bilinear", align_corners=False)
    return 0.8 * smooth + 0.2 * noise


@pytest.fixture(scope="session")
def small_mnist():
    """150 mnist5k training digits of classes 0-2, for tiny training runs."""
    from genaug.data.builtin import ImageTensorDataset, load_builtin

    ds = load_builtin("mnist5k", "train")
    idx = torch.nonzero(ds.labels < 3).flatten()[::8]
    return ImageTensorDataset(ds.images[idx], ds.labels[idx], "mnist5k-small", "train")


CUDA_NOTE = ("tests marked 'cuda' need a GPU: without one they are deselected (not skipped); they run on a GPU "
             "machine with the command in benchmarks/gpu_command.txt")


def pytest_configure(config):
    config.addinivalue_line("markers", f"cuda: {CUDA_NOTE}")


def pytest_report_header(config):
    return None if torch.cuda.is_available() else f"no CUDA device: {CUDA_NOTE}"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    gpu = [item for item in items if item.get_closest_marker("cuda")]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if not item.get_closest_marker("cuda")]
