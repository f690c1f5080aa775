"""Distribution distances between real and generated images: FID and KID.

Both run torchmetrics' ``FrechetInceptionDistance`` / ``KernelInceptionDistance`` on features that
genaug extracts once (:mod:`genaug.metrics.features`), so one extraction serves FID, KID,
precision/recall and diversity. Features are float64 (covariances and their square root are
computed in double precision), FID is clamped at 0 (two identical sets give about -1e-12
otherwise), and KID's random subsets are drawn from a seeded generator.

FID and KID values are comparable **only** between runs with the same feature extractor and
the same numbers of samples (FID is biased upwards for small sets).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import nn

from .features import Extractor, FeatureSet, feature_pair
from .inputs import Images


class KIDResult(NamedTuple):
    """Kernel Inception Distance: mean and standard deviation over random subsets."""

    mean: float
    std: float


class _Precomputed(nn.Module):
    """The "feature network" handed to torchmetrics: features are already extracted."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _as_features(x: FeatureSet | torch.Tensor, name: str) -> torch.Tensor:
    f = x.features if isinstance(x, FeatureSet) else x
    if not isinstance(f, torch.Tensor) or f.dim() != 2:
        raise ValueError(f"{name} features must be a (N, D) tensor or a FeatureSet; got "
                         f"{tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__}")
    return f.detach().to("cpu", torch.float64)


def frechet_distance(real: FeatureSet | torch.Tensor, fake: FeatureSet | torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))``, by torchmetrics, in float64.

    Args:
        real: real features ``(N, D)`` or a :class:`FeatureSet`.
        fake: generated features ``(M, D)`` or a :class:`FeatureSet`.

    Returns:
        The distance (>= 0).

    Example:
        >>> import torch
        >>> a = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
        >>> frechet_distance(a, a) < 1e-9
        True
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    fr, ff = _as_features(real, "real"), _as_features(fake, "fake")
    if fr.shape[1] != ff.shape[1]:
        raise ValueError(f"real features are {fr.shape[1]}-d but fake features {ff.shape[1]}-d")
    for nm, f in (("real", fr), ("fake", ff)):
        if f.shape[0] < 2:
            raise ValueError(f"{nm} has {f.shape[0]} sample(s); FID needs at least 2 (and many more than the "
                             f"{f.shape[1]} feature dimensions for a stable covariance)")
    if min(fr.shape[0], ff.shape[0]) <= fr.shape[1]:
        warnings.warn(f"FID from {min(fr.shape[0], ff.shape[0])} samples of {fr.shape[1]}-d features: the covariance "
                      "is singular and the value is strongly biased; compare it only with runs of the same size",
                      stacklevel=2)
    metric = FrechetInceptionDistance(feature=_Precomputed(fr.shape[1]))
    metric.update(fr, real=True)
    metric.update(ff, real=False)
    return max(float(metric.compute()), 0.0)


def kernel_distance(real: FeatureSet | torch.Tensor, fake: FeatureSet | torch.Tensor, *, subsets: int = 100,
                    subset_size: int | None = None, degree: int = 3, gamma: float | None = None,
                    coef: float = 1.0, seed: int = 0) -> KIDResult:
    """Kernel (MMD^2) distance with a polynomial kernel on two feature sets (the KID formula).

    Args:
        real, fake: features ``(N, D)`` / ``(M, D)`` or :class:`FeatureSet`.
        subsets: number of random subsets averaged (>= 1).
        subset_size: samples per subset, 2..min(N, M) (default: ``min(1000, N, M)``).
        degree, gamma, coef: kernel ``(gamma * x.y + coef) ** degree`` (``gamma`` default ``1 / D``).
        seed: seeds the subset draws (same seed, same value).

    Returns:
        :class:`KIDResult` ``(mean, std)`` over subsets.

    Example:
        >>> import torch
        >>> a = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
        >>> kernel_distance(a, a + 3, subsets=10).mean > 0.1
        True
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    fr, ff = _as_features(real, "real"), _as_features(fake, "fake")
    if fr.shape[1] != ff.shape[1]:
        raise ValueError(f"real features are {fr.shape[1]}-d but fake features {ff.shape[1]}-d")
    if isinstance(subsets, bool) or not isinstance(subsets, int) or subsets < 1:
        raise ValueError(f"subsets={subsets!r} must be a positive int")
    n_max = min(fr.shape[0], ff.shape[0])
    if subset_size is None:
        subset_size = min(1000, n_max)
    if isinstance(subset_size, bool) or not isinstance(subset_size, int) or not 2 <= subset_size <= n_max:
        which = "real" if fr.shape[0] <= ff.shape[0] else "fake"
        raise ValueError(f"subset_size={subset_size!r} is not allowed: {which} has {n_max} samples; allowed: "
                         f"2..{n_max} (a KID subset cannot be larger than a sample set)")
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree={degree!r} must be a positive int")
    if gamma is not None and not (isinstance(gamma, (int, float)) and gamma > 0):
        raise ValueError(f"gamma={gamma!r} must be None or a positive number")
    if not (isinstance(coef, (int, float)) and coef > 0):
        raise ValueError(f"coef={coef!r} must be a positive number")
    with warnings.catch_warnings():  # torchmetrics warns that KID keeps all features: ours are small and extracted
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=_Precomputed(fr.shape[1]), subsets=subsets, subset_size=subset_size,
                                         degree=degree, gamma=None if gamma is None else float(gamma), coef=float(coef))
    metric.update(fr, real=True)
    metric.update(ff, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return KIDResult(float(mean), float(std))


def fid(real: Images | FeatureSet, fake: Images | FeatureSet, features: Extractor = None, *,
        batch_size: int = 256, device: str | torch.device | None = None, progress: bool | None = None) -> float:
    """Fréchet Inception Distance between real and generated images (lower is better, 0 = same statistics).

    Args:
        real: real images: tensor ``(N, C, H, W)`` uint8 or float in [0, 1] (any device),
            ``(images, labels)``, a Dataset, or a :class:`FeatureSet` from :func:`extract_features`.
        fake: generated images, the same kinds.
        features: feature extractor (default: ``mnist-classifier`` for 1x28x28 images; see
            :mod:`genaug.metrics.features`). Values are comparable only with the same extractor.
        batch_size: images per forward pass of the extractor.
        device: where the extractor runs (default: the images' device).
        progress: tqdm bar (``None``: on for long runs).

    Returns:
        FID (float >= 0).

    Example:
        >>> from genaug.data import load_builtin
        >>> test = load_builtin("mnist5k", "test")
        >>> fid(test.images[::2], test.images[1::2]) < 5   # two halves of the same split
        True
    """
    fr, ff = feature_pair(real, fake, features, batch_size=batch_size, device=device, progress=progress)
    return frechet_distance(fr, ff)


def kid(real: Images | FeatureSet, fake: Images | FeatureSet, features: Extractor = None, *, subsets: int = 100,
        subset_size: int | None = None, degree: int = 3, gamma: float | None = None, coef: float = 1.0,
        seed: int = 0, batch_size: int = 256, device: str | torch.device | None = None,
        progress: bool | None = None) -> KIDResult:
    """Kernel Inception Distance (unbiased MMD^2, polynomial kernel) over random subsets.

    Unlike FID it is unbiased for small sample sizes. Same inputs as :func:`fid`; ``subsets``,
    ``subset_size`` (2..min(N, M), default ``min(1000, N, M)``), ``degree``, ``gamma``, ``coef``
    and ``seed`` as in :func:`kernel_distance`.

    Returns:
        :class:`KIDResult` ``(mean, std)``.

    Example:
        >>> import torch
        >>> x = torch.rand(40, 1, 28, 28)
        >>> kid(x, x, subsets=5, subset_size=50)
        Traceback (most recent call last):
        ...
        ValueError: subset_size=50 is not allowed: real has 40 samples; allowed: 2..40 (a KID subset cannot be larger than a sample set)
    """
    fr, ff = feature_pair(real, fake, features, batch_size=batch_size, device=device, progress=progress)
    return kernel_distance(fr, ff, subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma, coef=coef,
                           seed=seed)
