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
