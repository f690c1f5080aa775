"""PNG figures of a generator evaluation: a sample grid per class and per-class metric bars.

Both are written atomically (a temporary file beside the target, then ``os.replace``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from genaug._atomic import atomic_path

_PAD, _GAP = 2, 12          # pixels between cells, and between the real and generated blocks
_BG = 1.0                   # background (white)


def _mosaic(real: torch.Tensor | None, fake: torch.Tensor) -> tuple[np.ndarray, list[int], int]:
    """(rows, cols, C, H, W) blocks -> one H x W (x 3) array; returns it, row centres and the fake block's x start."""
    rows, n_fake, c, h, w = fake.shape
    n_real = real.shape[1] if real is not None else 0
    width = n_real * (w + _PAD) + (_GAP if n_real else 0) + n_fake * (w + _PAD) + _PAD
    height = rows * (h + _PAD) + _PAD
    canvas = np.full((height, width, 3), _BG, dtype=np.float32)
    x_fake = _PAD + (n_real * (w + _PAD) + _GAP if n_real else 0)

    def put(img: torch.Tensor, y: int, x: int) -> None:
        arr = img.clamp(0, 1).permute(1, 2, 0).numpy()
        canvas[y:y + h, x:x + w] = arr if c == 3 else np.repeat(arr, 3, axis=2)

    centres = []
    for r in range(rows):
        y = _PAD + r * (h + _PAD)
        centres.append(y + h // 2)
        for j in range(n_real):
            put(real[r, j], y, _PAD + j * (w + _PAD))  # type: ignore[index]
        for j in range(n_fake):
            put(fake[r, j], y, x_fake + j * (w + _PAD))
    return canvas, centres, x_fake


def save_sample_grid(path: str | os.PathLike, fake: torch.Tensor, real: torch.Tensor | None = None, *,
                     row_labels: Sequence[str], row_notes: Sequence[str] | None = None, title: str = "",
                     scale: float = 2.0) -> Path:
    """Write a labelled grid: one row per class, real examples (left) beside generated ones.

    Args:
        path: the PNG to write.
        fake: generated images ``(rows, cols, C, H, W)`` in [0, 1].
        real: optional real images ``(rows, cols_real, C, H, W)`` shown left of a gap.
        row_labels: one label per row (the class).
        row_notes: optional text right of each row (e.g. per-class GAN-test accuracy).
        title: figure title.
        scale: screen pixels per image pixel.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    canvas, centres, x_fake = _mosaic(real, fake)
    hgt, wid = canvas.shape[:2]
    left, right = 0.55, 1.6 if row_notes else 0.2
    top, bottom = 0.75, 0.1
    dpi = 100
    fig = plt.figure(figsize=(wid * scale / dpi + left + right, hgt * scale / dpi + top + bottom), dpi=dpi)
    fw, fh = fig.get_size_inches()
    ax = fig.add_axes((left / fw, bottom / fh, wid * scale / dpi / fw, hgt * scale / dpi / fh))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for r, y in enumerate(centres):
        ax.text(-6, y, row_labels[r], ha="right", va="center", fontsize=10, fontweight="bold")
        if row_notes:
            ax.text(wid + 6, y, row_notes[r], ha="left", va="center", fontsize=8, family="monospace")
    if real is not None:
        ax.text((x_fake - _GAP) / 2, -4, "real", ha="center", va="bottom", fontsize=9, color="#333")
    ax.text(x_fake + (wid - x_fake) / 2, -4, "generated", ha="center", va="bottom", fontsize=9, color="#333")
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.12 / fh, va="top")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    return Path(path)


_METRIC_TITLES = {
    "gan_test": "GAN-test accuracy",
    "precision": "precision",
    "recall": "recall",
    "diversity": "diversity (fake / real)",
    "coverage": "coverage",
}


def save_per_class_bars(path: str | os.PathLike, per_class: dict[str, dict[int, float | None]],
                        overall: dict[str, float | None], floor: dict[str, dict[int, float | None]] | None = None,
                        *, class_names: Sequence[str] | None = None, title: str = "",
                        floor_label: str = "real data") -> Path:
    """Write one bar panel per metric: the value of every class, the overall value, the floor.

    Args:
        path: the PNG to write.
        per_class: ``{metric: {class: value}}`` for the metrics in ``gan_test``, ``precision``,
            ``recall``, ``diversity``, ``coverage`` (missing ones are skipped).
        overall: ``{metric: value}`` drawn as a dashed line.
        floor: optional ``{metric: {class: value}}`` of real data, drawn as black ticks.
        class_names: x tick labels (default: the class ids).
        title: figure title.
        floor_label: legend text of the floor ticks.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    metrics = [m for m in _METRIC_TITLES if per_class.get(m)]
    if not metrics:
        raise ValueError("per_class holds none of " + ", ".join(_METRIC_TITLES))
    classes = sorted({c for m in metrics for c in per_class[m]})
    names = list(class_names) if class_names is not None else [str(c) if c >= 0 else "all" for c in classes]
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.0 + 2.3 * len(metrics), 3.0), squeeze=False)
    x = np.arange(len(classes))
    for ax, m in zip(axes[0], metrics):
        vals = [per_class[m].get(c) for c in classes]
        heights = [v if v is not None else 0.0 for v in vals]
        ax.bar(x, heights, width=0.7, color="#4c78a8")
        for xi, v in zip(x, vals):
            if v is None:
                ax.text(xi, 0.02, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
        top = max([1.0] + heights)
        if floor and floor.get(m):
            fv = [floor[m].get(c) for c in classes]
            ax.scatter([xi for xi, v in zip(x, fv) if v is not None], [v for v in fv if v is not None],
                       marker="_", s=160, linewidths=2.2, color="black", zorder=3)
            top = max([top] + [v for v in fv if v is not None])
        if overall.get(m) is not None:
            ax.axhline(overall[m], color="#e45756", linestyle="--", linewidth=1.2)
        ax.set_ylim(0, top * 1.08)
        ax.set_title(_METRIC_TITLES[m], fontsize=10)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_xlabel("class", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles = [Patch(color="#4c78a8", label="per class"),
               Line2D([], [], color="#e45756", linestyle="--", label="all classes")]
    if floor:
        handles.append(Line2D([], [], color="black", marker="_", linestyle="none", markersize=12,
                              markeredgewidth=2.2, label=floor_label))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10, y=0.99)
    fig.tight_layout(rect=(0, 0.07, 1, 0.96 if title else 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, facecolor="white")
    plt.close(fig)
    return Path(path)
