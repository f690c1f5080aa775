"""Improved precision and recall of a generative model (Kynkäänniemi et al., NeurIPS 2019).

The real manifold is approximated by balls around every real feature vector, each with the
radius of its ``k``-th nearest real neighbour; likewise for the generated set.

* **precision**: share of generated samples inside the real manifold (fidelity);
* **recall**: share of real samples inside the generated manifold (how much of the real
  variety the model covers). A collapsed generator (one image repeated) has recall 0.

A sample is inside when its distance to some ball's centre is ``<=`` that ball's radius, as in
the authors' code and torch-fidelity's ``metric_prc`` (tested to agree). Distances are computed
in float64, in chunks, on the features' device.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .features import Extractor, FeatureSet, feature_pair
from .inputs import Images, num_images

_CHUNK_ELEMENTS = 2**24
"""Distances held at once (16 M float64 = 128 MB)."""


class PrecisionRecall(NamedTuple):
    """Improved precision and recall, each in [0, 1]."""

    precision: float
    recall: float


def _check_k(k: int, n_real: int, n_fake: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} must be a positive int (the neighbour that sets each ball's radius)")
    for nm, n in (("real", n_real), ("fake", n_fake)):
        if n < k + 1:
            raise ValueError(f"k={k} needs at least k + 1 = {k + 1} samples in each set; {nm} has {n}. "
                             f"Allowed: k in 1..{min(n_real, n_fake) - 1}")


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of every row of ``features`` ``(N, D)`` to its ``k``-th nearest other row.

    Example:
        >>> knn_radii(torch.tensor([[0.0], [1.0], [3.0]]), 1).tolist()
        [1.0, 1.0, 2.0]
    """
    n = features.shape[0]
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))
    # The k+1-th smallest distance of a row, counting the row itself at distance 0.
    return torch.cat([torch.cdist(features[i:i + rows], features).kthvalue(k + 1, dim=1).values
                      for i in range(0, n, rows)])


def inside_manifold(query: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Whether each ``query`` row lies in some ball ``(centres[j], radii[j])``; bool ``(Nq,)``.

    Example:
        >>> inside_manifold(torch.tensor([[0.5], [5.0]]), torch.tensor([[0.0]]), torch.tensor([1.0])).tolist()
        [True, False]
    """
    rows = max(1, _CHUNK_ELEMENTS // max(centres.shape[0], 1))
    return torch.cat([(torch.cdist(query[i:i + rows], centres) <= radii[None]).any(dim=1)
                      for i in range(0, query.shape[0], rows)])


def precision_recall_features(real: FeatureSet | torch.Tensor, fake: FeatureSet | torch.Tensor,
                              k: int = 3) -> PrecisionRecall:
    """Improved precision and recall from two feature sets ``(N, D)``, ``(M, D)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(300, 4, generator=g)
        >>> collapsed = torch.full((300, 4), 0.1)          # one sample, repeated
        >>> precision_recall_features(real, collapsed, k=3)
        PrecisionRecall(precision=1.0, recall=0.0)
    """
    fr = (real.features if isinstance(real, FeatureSet) else real).to(dtype=torch.float64)
    ff = (fake.features if isinstance(fake, FeatureSet) else fake).to(device=fr.device, dtype=torch.float64)
    if fr.dim() != 2 or ff.dim() != 2 or fr.shape[1] != ff.shape[1]:
        raise ValueError(f"real and fake features must be (N, D) with the same D; got {tuple(fr.shape)} and "
                         f"{tuple(ff.shape)}")
    _check_k(k, fr.shape[0], ff.shape[0])
    precision = inside_manifold(ff, fr, knn_radii(fr, k)).double().mean()
    recall = inside_manifold(fr, ff, knn_radii(ff, k)).double().mean()
    return PrecisionRecall(float(precision), float(recall))


def precision_recall(real: Images | FeatureSet, fake: Images | FeatureSet, k: int = 3, features: Extractor = None, *,
                     batch_size: int = 256, device: str | torch.device | None = None,
                     progress: bool | None = None) -> PrecisionRecall:
    """Improved precision (fidelity) and recall (coverage of the real variety) of generated images.

    Args:
        real: real images (tensor uint8 / float in [0, 1], ``(images, labels)``, Dataset) or a
            :class:`FeatureSet`.
        fake: generated images, the same kinds.
        k: the k-th nearest neighbour sets each ball's radius (the paper's default 3); each set
            needs at least ``k + 1`` samples. Use the same ``k`` and set sizes to compare runs.
        features: feature extractor (default: ``mnist-classifier`` for 1x28x28 images).
        batch_size, device, progress: feature extraction settings (see :func:`fid`).

    Returns:
        :class:`PrecisionRecall` ``(precision, recall)``.

    Example:
        >>> from genaug.data import load_builtin
        >>> test = load_builtin("mnist5k", "test")
        >>> pr = precision_recall(test.images[::2], test.images[1::2])
        >>> pr.precision > 0.6 and pr.recall > 0.6
        True
    """
    counts = [len(x) if isinstance(x, FeatureSet) else num_images(x, nm) for nm, x in (("real", real), ("fake", fake))]
    _check_k(k, *counts)
    fr, ff = feature_pair(real, fake, features, batch_size=batch_size, device=device, progress=progress)
    return precision_recall_features(fr, ff, k)
