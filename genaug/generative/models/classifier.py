"""Small CNN classifier: reference classifier and domain feature extractor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .common import check_images, config_from_dict, config_to_dict, training_mode, validate_common_config


@dataclass
class ClassifierConfig:
    """Architecture of :class:`Classifier`.

    Args:
        image_size: 28, 32 or 64.
        channels: 1 or 3.
        num_classes: number of output classes (>= 2).
        width: channels of the first conv block (doubled in the second).
        feature_dim: size of the penultimate feature vector (:meth:`Classifier.features`).
        dropout: dropout before the last layer.
    """

    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    width: int = 16
    feature_dim: int = 128
    dropout: float = 0.3

    def __post_init__(self) -> None:
        validate_common_config(self)
        if self.num_classes < 2:
            raise ValueError(f"num_classes={self.num_classes!r} must be >= 2 for a classifier")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout!r} must be in [0, 1)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClassifierConfig":
        return config_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.MaxPool2d(2))


class Classifier(nn.Module):
    """Two conv blocks -> global average pool -> features -> logits.

    Inputs are images in [0, 1] (or uint8), shape (B, C, H, W).

    Example:
        >>> import torch
        >>> clf = Classifier(ClassifierConfig())
        >>> clf(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    kind = "classifier"

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        if not isinstance(config, ClassifierConfig):
            raise TypeError(f"config must be a ClassifierConfig, got {type(config).__name__}")
        self.config = config
        w = config.width
        self.body = nn.Sequential(_block(config.channels, w), _block(w, 2 * w),
                                  nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4 * w, config.feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _prep(self, images: torch.Tensor) -> torch.Tensor:
        x = check_images(images, self.config.channels, self.config.image_size)
        return (x.to(self.device) - 0.5) / 0.5

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, feature_dim) — the domain feature extractor for metrics."""
        return self.body(self._prep(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.features(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Predicted class ids (B,) in eval mode, batched."""
        with training_mode(self, False):
            outs = [self(images[i:i + batch_size]).argmax(1) for i in range(0, images.shape[0], batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, dtype=torch.long)
