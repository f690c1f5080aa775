"""Demo output for the generative models: a labelled PNG grid of samples per class."""

from __future__ import annotations

from pathlib import Path

import torch

DEMO_MODELS = ("mnist-cgan", "mnist-cvae")


def sample_grid(model: torch.nn.Module, per_class: int = 10, seed: int = 0) -> torch.Tensor:
    """Samples arranged as (num_classes, per_class, C, H, W), images in [0, 1]."""
    k = model.config.num_classes or 1
    labels = torch.arange(k).repeat_interleave(per_class) if model.config.num_classes else None
    x = model.sample(k * per_class, labels=labels, generator=torch.Generator().manual_seed(seed)).cpu()
    return x.view(k, per_class, *x.shape[1:])


def save_grid_png(grid: torch.Tensor, path: Path, title: str, row_labels: list[str]) -> Path:
    """Write a (rows, cols, C, H, W) image grid as a labelled PNG with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = grid.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.6 + 0.8, rows * 0.6 + 0.6), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            img = grid[r, c]
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(row_labels[r], rotation=0, labelpad=10, va="center", ha="right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_generative_demo(out_dir: Path, per_class: int = 10, seed: int = 0) -> list[Path]:
    """Write one labelled PNG grid (rows = classes) per shipped model; return the paths.

    Args:
        out_dir: folder for ``generative_mnist-cgan.png`` and ``generative_mnist-cvae.png``.
        per_class: samples per class (columns).
        seed: sampling seed.

    Returns:
        Paths of the PNG files written.

    Example:
        >>> from pathlib import Path
        >>> write_generative_demo(Path("outputs/demo"))  # doctest: +SKIP
    """
    from .checkpoint import load_model

    out_dir = Path(out_dir)
    paths = []
    for name in DEMO_MODELS:
        model = load_model(name)
        grid = sample_grid(model, per_class, seed)
        labels = [str(i) for i in range(grid.shape[0])]
        title = f"{name}: {per_class} samples per class (seed {seed}, rows = class label)"
        paths.append(save_grid_png(grid, out_dir / f"generative_{name}.png", title, labels))
    return paths
