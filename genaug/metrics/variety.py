"""Diversity of generated images: spread within each class, and the share of real modes covered.

* **within-class diversity**: the mean pairwise feature distance between generated images of
  one class, divided by the same for real images of that class. 1 means as varied as the real
  data; a generator that repeats one image per class scores 0 (the "mode collapse" that class
  accuracy does not show). ``score`` averages the ratio over classes; it is ``None`` (undefined,
  not 0) when no class has two generated and two real images to form pairs, and ``reason``
  says why.
* **coverage** (Naeem et al., ICML 2020): the share of real samples whose neighbourhood (the
  ball reaching their ``k``-th nearest real neighbour) holds at least one generated sample, i.e.
  the share of the real data's local modes that the generator reaches. Unlike recall it does
  not reward generated outliers; 1 = every real mode covered.

Without labels (an unconditional model or unlabelled images) all images form one class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .features import Extractor, FeatureSet, feature_pair
from .inputs import Images, num_images
from .knn_manifold import _check_k, knn_radii


@dataclass
class DiversityResult:
    """Output of :func:`diversity`; per-class dicts are keyed by class id (``-1``: no labels).

    Attributes:
        score: mean over classes of ``fake_distance / real_distance`` (1 = as diverse as real;
            0 = every class repeats one image). ``None`` when no class has a ratio (fewer than 2
            generated or real images in every class, or identical real images): undefined, which
            is not the same as collapsed; ``reason`` then says why.
        coverage: share of real samples whose k-NN ball holds a generated sample.
        per_class: diversity ratio per class (``None`` where a class has < 2 generated images).
        per_class_coverage: coverage within each class (``None`` if too few real images).
        fake_distance, real_distance: mean pairwise feature distance per class.
    """

    score: float | None
    coverage: float
    per_class: dict[int, float | None] = field(default_factory=dict)
    per_class_coverage: dict[int, float | None] = field(default_factory=dict)
    fake_distance: dict[int, float | None] = field(default_factory=dict)
    real_distance: dict[int, float | None] = field(default_factory=dict)
    reason: str | None = None


def mean_pairwise_distance(features: torch.Tensor, max_samples: int = 1000, seed: int = 0) -> float | None:
    """Mean Euclidean distance over all pairs of distinct rows of ``features`` ``(N, D)``.

    Sets larger than ``max_samples`` are subsampled (seeded) first. ``None`` for fewer than 2 rows.

    Example:
        >>> mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
        5.0
    """
    n = features.shape[0]
    if n < 2:
        return None
    if n > max_samples:
        features = features[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_samples]]
        n = max_samples
    d = torch.cdist(features.double(), features.double())
    return float(d.sum() / (n * (n - 1)))


def coverage_features(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> float:
    """Coverage (Naeem et al. 2020) from feature tensors ``(N, D)`` and ``(M, D)``.

    Example:
        >>> real = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
        >>> coverage_features(real, real, k=5)
        1.0
    """
    _check_k(k, real.shape[0], k + 1)
    if fake.shape[0] < 1:
        raise ValueError("fake is empty; coverage needs at least one generated sample")
    real, fake = real.double(), fake.to(real.device, torch.float64)
    return float(_real_balls_hit(real, fake, knn_radii(real, k)).double().mean())


def _real_balls_hit(real: torch.Tensor, fake: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each real sample, whether some fake sample lies within its radius."""
    rows = max(1, 2**24 // max(fake.shape[0], 1))
    return torch.cat([(torch.cdist(real[i:i + rows], fake) <= radii[i:i + rows, None]).any(dim=1)
                      for i in range(0, real.shape[0], rows)])


def _groups(fs: FeatureSet) -> dict[int, torch.Tensor]:
    if fs.labels is None:
        return {-1: fs.features}
    return {int(c): fs.features[fs.labels == c] for c in torch.unique(fs.labels)}


def diversity_features(real: FeatureSet, fake: FeatureSet, *, k: int = 5, max_samples: int = 1000,
                       seed: int = 0) -> DiversityResult:
    """:func:`diversity` on already extracted :class:`FeatureSet` s (labels from the sets)."""
    labelled = real.labels is not None and fake.labels is not None
    r_groups = _groups(real) if labelled else {-1: real.features}
    f_groups = _groups(fake) if labelled else {-1: fake.features}
    res = DiversityResult(score=None, coverage=coverage_features(real.features, fake.features, k))
    ratios = []
    for c in sorted(set(r_groups) | set(f_groups)):
        fr, ff = r_groups.get(c), f_groups.get(c)
        dr = mean_pairwise_distance(fr, max_samples, seed) if fr is not None else None
        df = mean_pairwise_distance(ff, max_samples, seed) if ff is not None else None
        res.real_distance[c], res.fake_distance[c] = dr, df
        ratio = df / dr if dr and df is not None else None
        res.per_class[c] = ratio
        if ratio is not None:
            ratios.append(ratio)
        enough = fr is not None and ff is not None and fr.shape[0] > k and ff.shape[0] > 0
        res.per_class_coverage[c] = coverage_features(fr, ff, k) if enough else None
    if ratios:
        res.score = sum(ratios) / len(ratios)
    else:
        res.reason = _undefined_reason(r_groups, f_groups)
    return res


def _undefined_reason(r_groups: dict[int, torch.Tensor], f_groups: dict[int, torch.Tensor]) -> str:
    """Why no class has a diversity ratio (see :func:`diversity_features`)."""
    most_fake = max((g.shape[0] for g in f_groups.values()), default=0)
    most_real = max((g.shape[0] for g in r_groups.values()), default=0)
    unit = "class" if -1 not in f_groups else "the (unlabelled) set"
    if most_fake < 2:
        why = f"every {unit} has at most {most_fake} generated image{'s' if most_fake != 1 else ''}"
    elif most_real < 2:
        why = f"every {unit} has at most {most_real} real image{'s' if most_real != 1 else ''}"
    elif not any(c in r_groups and f_groups[c].shape[0] >= 2 and r_groups[c].shape[0] >= 2 for c in f_groups):
        why = "no class has 2 or more images among both the generated and the real ones"
    else:
        why = "the real images of every class that has pairs are identical (mean pairwise distance 0)"
    return (f"undefined, not 0 (0 means a collapsed generator): {why}, and within-class diversity compares "
            "pairs of images of one class")


def diversity(real: Images | FeatureSet, fake: Images | FeatureSet, features: Extractor = None, *, k: int = 5,
              max_samples: int = 1000, seed: int = 0, batch_size: int = 256,
              device: str | torch.device | None = None, progress: bool | None = None) -> DiversityResult:
    """Within-class diversity (relative to real data) and coverage of the real modes.

    Args:
        real: real images with labels (``(images, labels)``, a labelled Dataset) or a
            :class:`FeatureSet`; without labels everything is one class.
        fake: generated images with their class labels, the same kinds.
        features: feature extractor (default: ``mnist-classifier`` for 1x28x28 images).
        k: neighbour defining each real sample's neighbourhood for coverage (Naeem et al. use 5);
            the real set needs at least ``k + 1`` samples.
        max_samples: per class, at most this many images (seeded subsample) enter the pairwise
            distances.
        seed: seeds that subsample.
        batch_size, device, progress: feature extraction settings (see :func:`fid`).

    Returns:
        :class:`DiversityResult`; its ``score`` is ``None`` (with ``reason``) when no class has
        two generated and two real images.

    Example:
        >>> from genaug.data import load_builtin
        >>> test = load_builtin("mnist5k", "test")
        >>> one_per_class = (test.images[::100].repeat_interleave(20, 0), test.labels[::100].repeat_interleave(20))
        >>> d = diversity(test, one_per_class)
        >>> d.score, d.coverage < 0.2
        (0.0, True)
        >>> one_image_each = diversity(test, (test.images[::100], test.labels[::100]))
        >>> one_image_each.score is None, one_image_each.reason
        (True, 'undefined, not 0 (0 means a collapsed generator): every class has at most 1 generated image, ...')
    """
    n_real = len(real) if isinstance(real, FeatureSet) else num_images(real, "real")
    _check_k(k, n_real, k + 1)
    fr, ff = feature_pair(real, fake, features, batch_size=batch_size, device=device, progress=progress)
    return diversity_features(fr, ff, k=k, max_samples=max_samples, seed=seed)
