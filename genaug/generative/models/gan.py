"""Class-conditional DCGAN with a spectrally normalised projection discriminator."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .common import (ConvDecoder, check_images, check_labels, check_n, config_from_dict,
                     config_to_dict, geometry, training_mode, truncated_normal, validate_common_config)

GAN_LOSSES = ("hinge", "ns")
GAN_PENALTIES = ("none", "r1", "gp")


@dataclass
class GANConfig:
    """Architecture and loss settings of :class:`ConditionalGAN`.

    Args:
        image_size: 28, 32 or 64.
        channels: 1 or 3.
        num_classes: number of classes; 0 = unconditional.
        latent_dim: size of ``z``.
        g_width: generator width (channels of the last feature map; doubles per level).
        d_width: discriminator width (channels of the first feature map).
        loss: ``"hinge"`` or ``"ns"`` (non-saturating).
        penalty: ``"none"``, ``"r1"`` (on real data) or ``"gp"`` (WGAN-GP style, on mixes).
        penalty_weight: weight of the penalty.
        ema_decay: decay of the EMA generator (0 disables the EMA copy).
        noise_injection: add learned-scale per-pixel noise after each generator block.
        minibatch_std: append the minibatch standard deviation (groups of 4) as a feature map
            before the discriminator's last conv, so the discriminator can see a lack of
            diversity (counters mode collapse; Karras et al. 2018).
        mode_seeking: weight of the mode-seeking term (Mao et al. 2019): the generator is
            penalised by ``1 / (mean|G(z1,y) - G(z2,y)| / mean|z1 - z2| + eps)``, which stops a
            class-conditional generator from ignoring ``z``; 0 disables it (one extra
            generator pass per step when on).
    """

    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    latent_dim: int = 64
    g_width: int = 32
    d_width: int = 32
    loss: str = "hinge"
    penalty: str = "none"
    penalty_weight: float = 1.0
    ema_decay: float = 0.999
    noise_injection: bool = False
    minibatch_std: bool = True
    mode_seeking: float = 0.0

    def __post_init__(self) -> None:
        validate_common_config(self)
        if self.loss not in GAN_LOSSES:
            raise ValueError(f"loss={self.loss!r} is not supported; allowed: {GAN_LOSSES}")
        if self.penalty not in GAN_PENALTIES:
            raise ValueError(f"penalty={self.penalty!r} is not supported; allowed: {GAN_PENALTIES}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay={self.ema_decay!r} must be in [0, 1)")
        if self.mode_seeking < 0:
            raise ValueError(f"mode_seeking={self.mode_seeking!r} must be >= 0")
        if self.penalty_weight < 0:
            raise ValueError(f"penalty_weight={self.penalty_weight!r} must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GANConfig":
        return config_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)


class Generator(nn.Module):
    """``z`` (B, Z) + labels (B,) -> images in [-1, 1] (B, C, H, W)."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.net = ConvDecoder(cfg.latent_dim, cfg.g_width, cfg.image_size, cfg.channels,
                               cfg.num_classes, noise=cfg.noise_injection)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.tanh(self.net(z, labels, generator))


def _minibatch_std(h: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Per-group standard deviation of ``h`` (B, C, H, W) averaged to one map (B, 1, H, W)."""
    b = h.shape[0]
    g = group if b % group == 0 else (b if b < group else 1)
    if g < 2:
        return h.new_zeros(b, 1, *h.shape[2:])
    y = h.view(g, b // g, *h.shape[1:])                     # (G, B/G, C, H, W)
    std = (y.var(0, unbiased=False) + 1e-8).sqrt()          # (B/G, C, H, W)
    s = std.mean(dim=(1, 2, 3))                              # (B/G,)
    return s.repeat(g)[:, None, None, None].expand(b, 1, *h.shape[2:])


class Discriminator(nn.Module):
    """Images in [-1, 1] (B, C, H, W) + labels -> realness score (B,).

    Every layer is spectrally normalised; classes enter by projection
    (Miyato & Koyama 2018): ``score = linear(phi(x)) + <embed(y), phi(x)>``.
    """

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        _, levels = geometry(cfg.image_size)
        w = cfg.d_width
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(cfg.channels, w, 3, 1, 1)), nn.LeakyReLU(0.2)]
        c = w
        for _ in range(levels):                       # each level halves the side
            c2 = min(c * 2, w * 8)
            layers += [spectral_norm(nn.Conv2d(c, c2, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c = c2
        self.features = nn.Sequential(*layers)
        self.minibatch_std = cfg.minibatch_std
        extra = 1 if cfg.minibatch_std else 0
        self.last = nn.Sequential(spectral_norm(nn.Conv2d(c + extra, c, 3, 1, 1)), nn.LeakyReLU(0.2))  # base x base
        self.linear = spectral_norm(nn.Linear(c, 1))
        self.embed = spectral_norm(nn.Embedding(cfg.num_classes, c)) if cfg.num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.features(x)                          # (B, C_last, base, base)
        if self.minibatch_std:
            h = torch.cat([h, _minibatch_std(h)], 1)  # (B, C_last + 1, base, base)
        h = self.last(h).sum(dim=(2, 3))              # (B, C_last), sum pooling
        out = self.linear(h).squeeze(1)               # (B,)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(1)
        return out


class ConditionalGAN(nn.Module):
    """Class-conditional GAN: DCGAN generator, SN projection discriminator, EMA generator.

    Args:
        config: a :class:`GANConfig`.
        with_discriminator: build the discriminator (not needed to sample).
        with_ema: keep an EMA copy of the generator (used by :meth:`sample`) when
            ``config.ema_decay > 0``.

    Example:
        >>> import torch
        >>> gan = ConditionalGAN(GANConfig(image_size=28, num_classes=10))
        >>> x = gan.sample(8, labels=3, generator=torch.Generator().manual_seed(0))
        >>> x.shape
        torch.Size([8, 1, 28, 28])
    """

    kind = "gan"

    def __init__(self, config: GANConfig, with_discriminator: bool = True, with_ema: bool = True) -> None:
        super().__init__()
        if not isinstance(config, GANConfig):
            raise TypeError(f"config must be a GANConfig, got {type(config).__name__}")
        self.config = config
        self.generator = Generator(config)
        self.discriminator = Discriminator(config) if with_discriminator else None
        self.generator_ema: Generator | None = None
        if with_ema and config.ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator)
            self.generator_ema.requires_grad_(False)

    # ----------------------------------------------------------------- training helpers
    @torch.no_grad()
    def update_ema(self, step: int | None = None) -> None:
        """``ema = d * ema + (1 - d) * generator`` for parameters; buffers are copied.

        Args:
            step: optimisation steps done so far; when given, the decay warms up as
                ``d = min(ema_decay, (1 + step) / (10 + step))`` so early EMA weights are not
                dominated by the random initialisation.
        """
        if self.generator_ema is None:
            return
        d = self.config.ema_decay
        if step is not None:
            d = min(d, (1.0 + step) / (10.0 + step))
        for pe, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            pe.lerp_(p.detach(), 1.0 - d)
        for be, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            be.copy_(b)

    @torch.no_grad()
    def refresh_ema_stats(self, batches: int = 16, batch_size: int = 128, seed: int = 0) -> None:
        """Recompute the EMA generator's batch-norm running statistics ("standing stats").

        Running statistics copied from the raw generator do not match the averaged EMA
        weights; this runs ``batches`` seeded forward passes of the EMA generator in training
        mode and stores the exact average of their batch statistics. Deterministic, and it
        does not touch torch's global RNG. Called by the trainer before validation and export.
        """
        net = self.generator_ema
        if net is None:
            return
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        if not bns:
            return
        g = torch.Generator().manual_seed(seed)
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the refresh batches
        try:
            with training_mode(net, True):
                k = self.config.num_classes
                for _ in range(batches):
                    z = torch.randn(batch_size, self.config.latent_dim, generator=g).to(self.device)
                    y = torch.randint(0, k, (batch_size,), generator=g).to(self.device) if k else None
                    net(z, y, g)
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "hinge":
            return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "hinge":
            return -fake_logits.mean()
        return F.softplus(-fake_logits).mean()

    def mode_seeking_loss(self, fake: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Mode-seeking term for a second latent draw with the same labels, times its weight."""
        w = self.config.mode_seeking
        if w == 0:
            return fake.new_zeros(())
        z2 = torch.randn_like(z)
        fake2 = self.generator(z2, labels)
        ratio = (fake - fake2).abs().mean() / (z - z2).abs().mean()
        return w / (ratio + 1e-5)

    def penalty(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """R1 (gradient norm^2 on real data) or WGAN-GP (on random mixes), times its weight."""
        cfg = self.config
        if cfg.penalty == "none" or cfg.penalty_weight == 0:
            return real.new_zeros(())
        assert self.discriminator is not None
        if cfg.penalty == "r1":
            x = real.detach().requires_grad_(True)
        else:
            a = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
            x = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.discriminator(x, labels).sum(), x, create_graph=True)
        norm2 = grad.pow(2).flatten(1).sum(1)
        if cfg.penalty == "r1":
            return cfg.penalty_weight * 0.5 * norm2.mean()
        return cfg.penalty_weight * (norm2.add(1e-12).sqrt() - 1).pow(2).mean()

    # ----------------------------------------------------------------------- sampling
    def _sampling_net(self) -> Generator:
        return self.generator_ema if self.generator_ema is not None else self.generator

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def sample(self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None,
               generator: torch.Generator | None = None, truncation: float | None = None) -> torch.Tensor:
        """Generate ``n`` images.

        Args:
            n: number of images (>= 1).
            labels: ``None`` (uniform random classes drawn with ``generator``), one int for
                all images, or ``n`` ints in ``0..num_classes-1``. Must be ``None`` for an
                unconditional model.
            generator: ``torch.Generator`` for the latents (and noise injection); the same
                seed gives the same images.
            truncation: if set, latents with ``|z| > truncation`` are redrawn (truncation
                trick: less diversity, higher fidelity).

        Returns:
            float32 images in [0, 1], shape ``(n, C, H, W)``, on the model's device.
        """
        n = check_n(n)
        y = check_labels(labels, n, self.config.num_classes, self.device, generator)
        z = truncated_normal((n, self.config.latent_dim), truncation, generator, self.device)
        return self._generate(z, y, generator)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode given latents ``z`` (B, Z) to images in [0, 1] (for interpolation)."""
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must be (B, {self.config.latent_dim}); got {tuple(z.shape)}")
        y = check_labels(labels, z.shape[0], self.config.num_classes, self.device, generator)
        return self._generate(z, y, generator)

    @torch.no_grad()
    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        """:meth:`generate` for already-checked labels (checking device labels reads them: a sync)."""
        net = self._sampling_net()
        with training_mode(net, False):
            return (net(z.to(self.device), labels, generator) + 1) / 2

    def discriminate(self, images: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Discriminator score (B,) for images in [0, 1] (or uint8)."""
        if self.discriminator is None:
            raise RuntimeError("this ConditionalGAN was loaded without a discriminator")
        x = check_images(images, self.config.channels, self.config.image_size)
        if self.config.num_classes and labels is None:
            raise ValueError(f"labels are required for a conditional discriminator (num_classes={self.config.num_classes})")
        y = check_labels(labels, x.shape[0], self.config.num_classes, self.device, None)
        return self.discriminator(x.to(self.device) * 2 - 1, y)
