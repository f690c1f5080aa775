"""genaug: batched, fused, reproducible data augmentation for PyTorch.

Example:
    >>> import torch, genaug as ga
    >>> aug = ga.Compose([ga.RandomResizedCrop(32), ga.RandomRotation(15), ga.ColorJitter(0.3, 0.3)], seed=0)
    >>> aug(torch.rand(4, 3, 64, 64)).shape
    torch.Size([4, 3, 32, 32])
"""

from genaug.generative import GenerativeSample, LatentInterpolate, LatentNoise, load_model, lerp, slerp
from genaug.transforms import *  # noqa: F401,F403
from genaug.transforms import __all__ as _transform_names
from genaug.data import MixedDataset, SyntheticDataset  # synthetic datasets (issue 8)
from genaug.data import DeviceLoader  # batches to the device, augmented there (issue 11)
from genaug.robustness import Corruption, RandomCorruption, corrupt  # robustness benchmarking (issue 10)

__version__ = "0.1.0"
__all__ = [*_transform_names, "GenerativeSample", "LatentInterpolate", "LatentNoise", "lerp", "load_model", "slerp"]
__all__ += ["MixedDataset", "SyntheticDataset"]
__all__ += ["DeviceLoader"]
__all__ += ["Corruption", "RandomCorruption", "corrupt"]
