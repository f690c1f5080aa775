"""Convolutional conditional VAE (Bernoulli likelihood on pixels in [0, 1])."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import (ConvDecoder, check_images, check_labels, check_n, config_from_dict,
                     config_to_dict, geometry, training_mode, truncated_normal, validate_common_config)


PRIORS = ("standard", "aggregate")


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
        prior: where :meth:`ConditionalVAE.sample` draws latents from. ``"standard"``:
            ``N(0, I)``, the prior the model is trained against. ``"aggregate"``: one
            full-covariance Gaussian per class fitted after training to the encoder's
            aggregate posterior (:meth:`ConditionalVAE.fit_prior`; ``genaug train`` does it).
            Prior draws that fall where no training image was encoded decode to blurry or
            wrong-class images; the fitted prior avoids those regions ("ex-post density
            estimation", Ghosh et al., ICLR 2020). Training is the same for both.
    """

    image_size: int = 28
    channels: int = 1
    num_classes: int = 10
    latent_dim: int = 16
    enc_width: int = 32
    dec_width: int = 32
    beta: float = 1.0
    prior: str = "standard"

    def __post_init__(self) -> None:
        validate_common_config(self)
        if self.beta < 0:
            raise ValueError(f"beta={self.beta!r} must be >= 0")
        if self.prior not in PRIORS:
            raise ValueError(f"prior={self.prior!r} is not allowed; allowed: {PRIORS}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VAEConfig":
        return config_from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)


class Encoder(nn.Module):
    """Images (B, C, H, W) + one-hot label planes -> (mu, logvar), each (B, Z).

    ``labels`` are class ids (B,) or class weights (B, K) (soft labels, used as the planes).
    """

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
            # class ids (B,) -> one-hot; class weights (B, K) (soft labels) are used as they are
            onehot = labels.to(x.dtype) if labels.is_floating_point() else F.one_hot(labels, self.num_classes).to(x.dtype)
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        h = self.features(x).flatten(1)                                         # (B, C*base*base)
        if self.num_classes:
            h = torch.cat([h, onehot], 1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)


def _read_prior_fitted(vae: "ConditionalVAE", _incompatible_keys: Any = None) -> None:
    """Re-read, after a state dict was loaded, whether every class of the aggregate prior is fitted."""
    vae._prior_fitted = vae.config.prior == "aggregate" and bool(vae.prior_count.min() > 0)


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
        if config.prior == "aggregate":
            k, z = max(config.num_classes, 1), config.latent_dim
            # One Gaussian per class (one in all for an unconditional model); identity until fitted.
            self.register_buffer("prior_mean", torch.zeros(k, z))
            self.register_buffer("prior_scale_tril", torch.eye(z).repeat(k, 1, 1))
            self.register_buffer("prior_count", torch.zeros(k, dtype=torch.long))
        # Whether every class of the aggregate prior is fitted, kept on the host so that sampling
        # need not read the (device) counts: set by fit_prior, re-read once per load_state_dict.
        self._prior_fitted = False
        self.register_load_state_dict_post_hook(_read_prior_fitted)  # a module-level function: picklable

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
        """Decode latents (B, Z) to images in [0, 1], shape (B, C, H, W) (inference mode)."""
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must be (B, {self.config.latent_dim}); got {tuple(z.shape)}")
        return self._decode(z, self._labels(labels, z.shape[0]))

    @torch.no_grad()
    def _decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """:meth:`decode` for already-checked labels (checking device labels reads them: a sync)."""
        with training_mode(self, False):
            return torch.sigmoid(self.decoder(z.to(self.device), labels))

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
        with training_mode(self, False):
            mu, _ = self.encode(images, labels)
            return self.decode(mu, labels)

    @torch.no_grad()
    def fit_prior(self, images: torch.Tensor, labels: Any = None, batch_size: int = 500) -> "ConditionalVAE":
        """Fit the ``"aggregate"`` prior: per class, the mean and covariance of ``q(z | x, y)``.

        The covariance of the aggregate posterior is the covariance of the posterior means
        plus the average posterior variance. Use the images the model was trained on.

        Args:
            images: (N, C, H, W) uint8 or float in [0, 1].
            labels: N class ids (required when conditional); every class needs >= 2 images.
            batch_size: images encoded at a time.

        Returns:
            ``self``, so that ``vae.fit_prior(x, y).sample(...)`` reads naturally.

        Example:
            >>> import torch
            >>> vae = ConditionalVAE(VAEConfig(num_classes=2, latent_dim=4, prior="aggregate"))
            >>> x = torch.rand(8, 1, 28, 28)
            >>> vae.fit_prior(x, labels=[0, 1] * 4).prior_count.tolist()
            [4, 4]
        """
        if self.config.prior != "aggregate":
            raise RuntimeError(f"fit_prior needs a model built with prior='aggregate'; this one has "
                               f"prior={self.config.prior!r} (rebuild with VAEConfig(..., prior='aggregate') "
                               "and load the weights into it)")
        x = check_images(images, self.config.channels, self.config.image_size)
        y = self._labels(labels, x.shape[0])
        if y is None:
            y = torch.zeros(x.shape[0], dtype=torch.long, device=self.device)
        mus, variances = [], []
        with training_mode(self, False):
            for i in range(0, x.shape[0], batch_size):
                mu, logvar = self.encoder(x[i:i + batch_size].to(self.device),
                                          y[i:i + batch_size] if self.config.num_classes else None)
                mus.append(mu.double())
                variances.append(logvar.double().exp())
        mu, var = torch.cat(mus), torch.cat(variances)
        z_dim = self.config.latent_dim
        eye = torch.eye(z_dim, dtype=torch.float64, device=mu.device)
        means, chols, counts = [], [], []
        for k in range(self.prior_mean.shape[0]):
            sel = y == k
            n_k = int(sel.sum())
            if n_k < 2:
                raise ValueError(f"fit_prior needs >= 2 images of every class; class {k} has {n_k}")
            cov = torch.cov(mu[sel].T).reshape(z_dim, z_dim) + torch.diag(var[sel].mean(0))
            # Jitter only if the covariance is numerically singular (e.g. a collapsed latent unit).
            for jitter in (0.0, 1e-8, 1e-6, 1e-4, 1e-2):
                chol, info = torch.linalg.cholesky_ex(cov + jitter * eye)
                if int(info) == 0:
                    break
            else:
                raise ValueError(f"fit_prior: the latent covariance of class {k} is not positive definite "
                                 "(NaN or infinite encodings?); the prior was left unchanged")
            means.append(mu[sel].mean(0))
            chols.append(chol)
            counts.append(n_k)
        # Written only once every class has fitted: a failure leaves the previous prior intact.
        self.prior_mean.copy_(torch.stack(means))
        self.prior_scale_tril.copy_(torch.stack(chols))
        self.prior_count.copy_(torch.tensor(counts))
        self._prior_fitted = True
        return self

    def sample_latent(self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw ``n`` latents from the model's prior (see ``VAEConfig.prior``).

        Args: as :meth:`sample`; ``truncation`` applies to the standard-normal draws before
            the fitted prior's scale is applied.

        Returns:
            ``(z, labels)``: latents (n, latent_dim) and class ids (n,) (``None`` when
            unconditional), on the model's device; ``decode(z, labels)`` turns them to images.
        """
        n = check_n(n)
        y = check_labels(labels, n, self.config.num_classes, self.device, generator)
        eps = truncated_normal((n, self.config.latent_dim), truncation, generator, self.device)
        if self.config.prior == "standard":
            return eps, y
        if not self._prior_fitted:
            raise RuntimeError("this VAE has prior='aggregate' but its prior was never fitted; call "
                               "vae.fit_prior(train_images, train_labels) first (genaug train does it)")
        k = y if y is not None else torch.zeros(n, dtype=torch.long, device=self.device)
        z = self.prior_mean[k] + (self.prior_scale_tril[k] @ eps.unsqueeze(-1)).squeeze(-1)
        return z, y

    @torch.no_grad()
    def sample(self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None,
               generator: torch.Generator | None = None, truncation: float | None = None) -> torch.Tensor:
        """Generate ``n`` images from the prior (``N(0, I)`` or the fitted aggregate prior).

        Args:
            n: number of images (>= 1).
            labels: ``None`` (uniform random classes drawn with ``generator``), one int or
                ``n`` ints in ``0..num_classes-1``; ``None`` for an unconditional model.
            generator: ``torch.Generator`` for labels and latents.
            truncation: if set, standard-normal draws with ``|eps| > truncation`` are redrawn.

        Returns:
            float32 images in [0, 1], shape ``(n, C, H, W)``, on the model's device.
        """
        z, y = self.sample_latent(n, labels, generator, truncation)
        return self._decode(z, y)
