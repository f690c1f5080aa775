"""Batched transforms with per-sample parameters, fused geometry and exact replay."""

from genaug.transforms.base import Transform
from genaug.transforms.compose import Compose, ModuleStage, OneOf, RandomApply, SomeOf
from genaug.transforms.geometric import (
    CenterCrop,
    GeometricTransform,
    RandomAffine,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomScale,
    RandomVerticalFlip,
    Resize,
)
from genaug.transforms.photometric import (
    ColorJitter,
    Normalize,
    RandomBilateralBlur,
    RandomBrightness,
    RandomContrast,
    RandomGaussianBlur,
    RandomGaussianNoise,
    RandomHue,
    RandomSaturation,
)
from genaug.transforms.serialization import from_dict, load_pipeline, save_pipeline
from genaug.transforms.warp import WarpOptions

__all__ = [
    "CenterCrop", "ColorJitter", "Compose", "GeometricTransform", "ModuleStage", "Normalize", "OneOf",
    "RandomAffine", "RandomApply", "RandomBilateralBlur", "RandomBrightness", "RandomContrast", "RandomCrop",
    "RandomGaussianBlur", "RandomGaussianNoise", "RandomHorizontalFlip", "RandomHue", "RandomResizedCrop",
    "RandomRotation", "RandomSaturation", "RandomScale", "RandomVerticalFlip", "Resize", "SomeOf", "Transform",
    "WarpOptions", "from_dict", "load_pipeline", "save_pipeline",
]
