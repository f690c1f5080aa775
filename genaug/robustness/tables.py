"""The published severity tables of Hendrycks & Dietterich (2019), "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations" (ICLR).

Three tables, one per published dataset script in ``hendrycks/robustness``
(``ImageNet-C/create_c/``): ``"cifar"`` (``make_cifar_c.py``, CIFAR-10-C, 32 px),
``"tiny-imagenet"`` (``make_tinyimagenet_c.py``, Tiny-ImageNet-C, 64 px) and ``"imagenet"``
(``make_imagenet_c.py``, ImageNet-C, 224 px). Every number below is the script's, severity 1..5
in order; the tuples keep the script's field order, named in :data:`FIELDS`.

Which table applies: ``table=`` names one; by default the image size picks it: the larger side
``<= 32`` px gives ``"cifar"``, ``<= 64`` gives ``"tiny-imagenet"``, anything larger ``"imagenet"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The table names, smallest images first, with the image side each was written for.
TABLE_SIZES: dict[str, int] = {"cifar": 32, "tiny-imagenet": 64, "imagenet": 224}

#: The 15 corruptions of the benchmark (the paper's order) and the 4 held-out extra ones.
BENCHMARK: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL: tuple[str, ...] = BENCHMARK + EXTRA

#: What each entry of a table row means (the published scripts' ``c`` tuples, in their order).
FIELDS: dict[str, tuple[str, ...]] = {
    "gaussian_noise": ("std",),
    "shot_noise": ("photons",),  # Poisson(x * c) / c
    "impulse_noise": ("amount",),  # salt-and-pepper fraction, salt_vs_pepper = 0.5
    "speckle_noise": ("std",),  # x + x * N(0, c)
    "gaussian_blur": ("sigma",),
    "glass_blur": ("sigma", "max_delta", "iterations"),
    "defocus_blur": ("radius", "alias_blur"),
    "motion_blur": ("radius", "sigma"),  # ImageMagick MotionBlurImage(radius, sigma, angle)
    "zoom_blur": ("zoom_factors",),
    "fog": ("strength", "wibble_decay"),
    "frost": ("image_weight", "frost_weight"),
    "snow": ("loc", "scale", "zoom", "threshold", "blur_radius", "blur_sigma", "image_weight"),
    "spatter": ("loc", "scale", "sigma", "threshold", "intensity", "mud"),
    "contrast": ("factor",),
    "brightness": ("shift",),  # added to HSV value
    "saturate": ("scale", "shift"),  # HSV saturation * scale + shift
    "jpeg_compression": ("quality",),
    "pixelate": ("factor",),
    "elastic_transform": ("alpha", "sigma", "affine"),  # in pixels at the table's image size
}


def _arange(start: float, stop: float, step: float) -> tuple[float, ...]:
    # The scripts write the zoom factors as np.arange calls; evaluating the same calls gives the
    # same lists (np.arange(1, 1.06, 0.01) has 7 values, up to 1.06, because of float rounding).
    return tuple(float(v) for v in np.arange(start, stop, step))


def _elastic(size: float, rows: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    return [(size * a, size * s, size * f) for a, s, f in rows]


TABLES: dict[str, dict[str, list[Any]]] = {
    "cifar": {  # make_cifar_c.py
        "gaussian_noise": [0.04, 0.06, .08, .09, .10],
        "shot_noise": [500, 250, 100, 75, 50],
        "impulse_noise": [.01, .02, .03, .05, .07],
        "speckle_noise": [.06, .1, .12, .16, .2],
        "gaussian_blur": [.4, .6, 0.7, .8, 1],
        "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
        "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
        "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
        "zoom_blur": [_arange(1, 1.06, 0.01), _arange(1, 1.11, 0.01), _arange(1, 1.16, 0.01),
                      _arange(1, 1.21, 0.01), _arange(1, 1.26, 0.01)],
        "fog": [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
        "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
        "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                 (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
        "spatter": [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                    (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
        "contrast": [.75, .5, .4, .3, 0.15],
        "brightness": [.05, .1, .15, .2, .3],
        "saturate": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
        "jpeg_compression": [80, 65, 58, 50, 40],
        "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
        "elastic_transform": _elastic(32, [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                                           (0.1, 0.03, 0.03)]),
    },
    "tiny-imagenet": {  # make_tinyimagenet_c.py
        "gaussian_noise": [0.04, 0.08, .12, .15, .18],
        "shot_noise": [250, 100, 50, 30, 15],
        "impulse_noise": [.01, .02, .05, .08, .14],
        "speckle_noise": [.15, .2, 0.25, 0.3, 0.35],
        "gaussian_blur": [.5, .75, 1, 1.25, 1.5],
        "glass_blur": [(0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)],
        "defocus_blur": [(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)],
        "motion_blur": [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
        "zoom_blur": [_arange(1, 1.06, 0.01), _arange(1, 1.11, 0.01), _arange(1, 1.16, 0.01),
                      _arange(1, 1.21, 0.01), _arange(1, 1.26, 0.01)],
        "fog": [(.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)],
        "frost": [(1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)],
        "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
                 (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)],
        "spatter": [(0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0), (0.65, 0.3, 1, 0.69, 0.6, 0),
                    (0.65, 0.1, 0.7, 0.68, 0.6, 1), (0.65, 0.1, 0.5, 0.67, 0.6, 1)],
        "contrast": [.4, .3, .2, .1, 0.05],
        "brightness": [.1, .2, .3, .4, .5],
        "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)],
        "jpeg_compression": [65, 58, 50, 40, 25],
        "pixelate": [0.9, 0.8, 0.7, 0.6, 0.5],
        "elastic_transform": _elastic(64, [(0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03),
                                           (0.16, 0.03, 0.02)]),
    },
    "imagenet": {  # make_imagenet_c.py
        "gaussian_noise": [.08, .12, 0.18, 0.26, 0.38],
        "shot_noise": [60, 25, 12, 5, 3],
        "impulse_noise": [.03, .06, .09, 0.17, 0.27],
        "speckle_noise": [.15, .2, 0.35, 0.45, 0.6],
        "gaussian_blur": [1, 2, 3, 4, 6],
        "glass_blur": [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
        "defocus_blur": [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
        "motion_blur": [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
        "zoom_blur": [_arange(1, 1.11, 0.01), _arange(1, 1.16, 0.01), _arange(1, 1.21, 0.02),
                      _arange(1, 1.26, 0.02), _arange(1, 1.31, 0.03)],
        "fog": [(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)],
        "frost": [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
        "snow": [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
                 (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)],
        "spatter": [(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
                    (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)],
        "contrast": [0.4, .3, .2, .1, .05],
        "brightness": [.1, .2, .3, .4, .5],
        "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
        "jpeg_compression": [25, 18, 15, 10, 7],
        "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
        # The script writes 244 where it meant 224 ("ultimately nothing is incorrect"): kept as published.
        "elastic_transform": [(244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
                              (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
                              (244 * 0.12, 244 * 0.01, 244 * 0.02)],
    },
}

#: Side of the plasma-fractal map fog draws (the scripts' ``plasma_fractal(mapsize=...)``), cropped to the image.
FOG_MAP_SIZE = {"cifar": 32, "tiny-imagenet": 64, "imagenet": 256}
#: Factor the frost texture is resized by before the crop (``cv2.resize(frost, fx=fy=...)``; ImageNet-C: none).
FROST_RESIZE = {"cifar": 0.2, "tiny-imagenet": 0.3, "imagenet": 1.0}


def table_for_size(size: tuple[int, int]) -> str:
    """The table the image size picks: larger side <= 32 px: ``"cifar"``, <= 64: ``"tiny-imagenet"``, else ``"imagenet"``.

    Example:
        >>> table_for_size((28, 28)), table_for_size((64, 48)), table_for_size((224, 224))
        ('cifar', 'tiny-imagenet', 'imagenet')
    """
    side = max(size)
    if side <= TABLE_SIZES["cifar"]:
        return "cifar"
    if side <= TABLE_SIZES["tiny-imagenet"]:
        return "tiny-imagenet"
    return "imagenet"


def check_table(table: Any) -> str | None:
    """Validate a ``table=`` argument: ``None`` (by image size) or one of :data:`TABLE_SIZES`."""
    if table is None:
        return None
    if not isinstance(table, str) or table not in TABLES:
        raise ValueError(f"table must be None (picked by image size) or one of {sorted(TABLES)}, got {table!r}")
    return table


def severity_params(name: str, severity: int, table: str) -> Any:
    """The published parameters of ``name`` at ``severity`` (1..5) in ``table``.

    Example:
        >>> severity_params("gaussian_noise", 3, "imagenet")
        0.18
    """
    return TABLES[table][name][severity - 1]
