"""Convolutional conditional VAE (Bernoulli likelihood on pixels in [0, 1])."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import (ConvDecoder, check_images, check_labels, check_n, config_from_dict,
                     config_to_dict, geometry, truncated_normal, validate_common_config)


@dataclass
class VAEConfig:
    """Architecture of :class:`ConditionalVAE`.

    Args:
        image_size: 28, 32 or 64.
        channels: 1 or 3.
        num_classes: number of classes; 0 = unconditional.
        latent_dim: size of ``z``.
        enc_width: encoder width (channels of the first feature map; doubles per level).
        dec_width: decoder width (channels of the last feature map).
        beta: weight of the KL term in the loss.
    """

    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    latent_dim: int = 16
    enc_width: int = 32
    dec_width: int = 32
    beta: float = 1.0

    def __post_init__(self) -> None:
        validate_common_config(self)
        if self.beta < 0:
            raise ValueError(f"beta={self.beta!r} must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VAEConfig":
        return config_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)


class Encoder(nn.Module):
    """Images (B, C, H, W) + one-hot label planes -> (mu, logvar), each (B, Z)."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        _, levels = geometry(cfg.image_size)
        w = cfg.enc_width
        layers: list[nn.Module] = []
        c = cfg.channels + cfg.num_classes
        for i in range(levels):
            c2 = min(w * 2 ** i, w * 8)
            layers += [nn.Conv2d(c, c2, 4, 2, 1), nn.BatchNorm2d(c2), nn.LeakyReLU(0.2)]
            c = c2
        self.features = nn.Sequential(*layers)
        base, _ = geometry(cfg.image_size)
        self.head = nn.Linear(c * base * base + cfg.num_classes, 2 * cfg.latent_dim)
        self.num_classes = cfg.num_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.num_classes:
            onehot = F.one_hot(labels, self.num_classes).to(x.dtype)           # (B, K)
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        h = self.features(x).flatten(1)                                         # (B, C*base*base)
        if self.num_classes:
            h = torch.cat([h, onehot], 1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)


class ConditionalVAE(nn.Module):
    """Conditional VAE: ``q(z | x, y)`` conv encoder, ``p(x | z, y)`` DCGAN-style decoder.

    Images are float in [0, 1] (uint8 accepted by ``encode``/``reconstruct``).

    Example:
        >>> import torch
        >>> vae = ConditionalVAE(VAEConfig(image_size=28, num_classes=10))
        >>> x = vae.sample(4, labels=[0, 1, 2, 3], generator=torch.Generator().manual_seed(0))
        >>> vae.reconstruct(x, labels=[0, 1, 2, 3]).shape
        torch.Size([4, 1, 28, 28])
    """

    kind = "vae"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        if not isinstance(config, VAEConfig):
            raise TypeError(f"config must be a VAEConfig, got {type(config).__name__}")
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = ConvDecoder(config.latent_dim, config.dec_width, config.image_size,
                                   config.channels, config.num_classes)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _labels(self, labels: Any, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        if self.config.num_classes and labels is None and generator is None:
            raise ValueError("labels are required for a conditional VAE (num_classes="
                             f"{self.config.num_classes}); pass ints in 0..{self.config.num_classes - 1}")
        return check_labels(labels, n, self.config.num_classes, self.device, generator)

    def encode(self, images: torch.Tensor, labels: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters.

        Args:
            images: (B, C, H, W) float in [0, 1] or uint8.
            labels: B class ids (required when conditional).

        Returns:
            ``(mu, logvar)``, each (B, latent_dim).
        """
        x = check_images(images, self.config.channels, self.config.image_size).to(self.device)
        return self.encoder(x, self._labels(labels, x.shape[0]))

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.decoder(z, labels)

    def decode(self, z: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Decode latents (B, Z) to images in [0, 1], shape (B, C, H, W)."""
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must be (B, {self.config.latent_dim}); got {tuple(z.shape)}")
        return torch.sigmoid(self.decoder(z.to(self.device), self._labels(labels, z.shape[0])))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass on float [0, 1] images: returns ``(logits, mu, logvar)``."""
        mu, logvar = self.encoder(x, labels)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z, labels), mu, logvar

    def loss(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO per image (BCE summed over pixels + beta * KL)."""
        logits, mu, logvar = self(x, labels)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / x.shape[0]
        return rec + self.config.beta * kl, {"rec": float(rec.detach()), "kl": float(kl.detach())}

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Encode and decode the posterior mean; returns images in [0, 1] like ``images``."""
        was = self.training
        self.eval()
        try:
            mu, _ = self.encode(images, labels)
            return self.decode(mu, labels if labels is not None else None)
        finally:
            self.train(was)

    @torch.no_grad()
    def sample(self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None,
               generator: torch.Generator | None = None, truncation: float | None = None) -> torch.Tensor:
        """Generate ``n`` images from the prior.

        Args:
            n: number of images (>= 1).
            labels: ``None`` (uniform random classes drawn with ``generator``), one int or
                ``n`` ints in ``0..num_classes-1``; ``None`` for an unconditional model.
            generator: ``torch.Generator`` for labels and latents.
            truncation: if set, prior draws with ``|z| > truncation`` are redrawn.

        Returns:
            float32 images in [0, 1], shape ``(n, C, H, W)``, on the model's device.
        """
        n = check_n(n)
        y = check_labels(labels, n, self.config.num_classes, self.device, generator)
        z = truncated_normal((n, self.config.latent_dim), truncation, generator, self.device)
        was = self.training
        self.eval()
        try:
            return torch.sigmoid(self.decoder(z, y))
        finally:
            self.train(was)
