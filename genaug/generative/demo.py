"""Demo output for the generative models: labelled PNG grids of samples per class and of the augmenters."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from genaug._atomic import atomic_write_bytes

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


#: Rows of the augmenter grid: LatentNoise scales, and the class pairs of the interpolation strips.
DEMO_SIGMAS = (0.25, 0.5, 1.0)
DEMO_PAIRS = ((3, 8), (4, 9))
STRIP_STEPS = 8


def augmenter_grid(seed: int = 0) -> tuple[list[tuple[str, torch.Tensor, list[str]]], list[str]]:
    """The rows of the augmenter demo on real mnist5k test digits: ``(row label, images, cell captions)``.

    Rows: one real test digit per class; each replaced by :class:`~genaug.GenerativeSample`
    (mnist-cgan); :class:`~genaug.LatentNoise` (mnist-cvae) at each of :data:`DEMO_SIGMAS`; and,
    per class pair of :data:`DEMO_PAIRS`, a :class:`~genaug.LatentInterpolate` strip: the real
    source digit, the partner's weight ``alpha`` from 0 to 1, the real partner digit.
    Returns the rows and the column titles (the classes).
    """
    import genaug as ga
    from genaug.data import load_builtin

    test = load_builtin("mnist5k", "test")
    first = {int(c): i for i, c in reversed(list(enumerate(test.labels.tolist())))}
    index = torch.tensor([first[c] + 7 for c in range(10)])  # the 8th test digit of each class
    images, labels = test.images[index], test.labels[index]
    gan, vae = ga.load_model("mnist-cgan"), ga.load_model("mnist-cvae")
    rows = [("real test digit", images, [""] * 10)]
    out = ga.GenerativeSample(gan, p=1.0, seed=seed)(images, labels=labels)
    rows.append(("GenerativeSample\n(mnist-cgan, own class)", out["image"], [""] * 10))
    for sigma in DEMO_SIGMAS:
        out = ga.LatentNoise(vae, sigma=sigma, p=1.0, seed=seed)(images, labels=labels)
        rows.append((f"LatentNoise σ={sigma}\n(mnist-cvae)", out["image"], [""] * 10))
    for a, b in DEMO_PAIRS:
        pair = images[[a, b]]
        cells, captions = [images[a]], [f"real {a}"]
        for alpha in torch.linspace(0, 1, STRIP_STEPS).tolist():
            # A batch of two: each sample's partner is the other one.
            res = ga.LatentInterpolate(vae, alpha=(alpha, alpha), p=1.0, seed=seed)(pair, labels=labels[[a, b]])
            cells.append(res["image"][0])
            captions.append(f"α={alpha:.2f}\n{a}:{float(res['labels'][0, a]):.2f} {b}:{float(res['labels'][0, b]):.2f}")
        cells.append(images[b])
        captions.append(f"real {b}")
        rows.append((f"LatentInterpolate\n{a} → {b} (slerp)", torch.stack(cells), captions))
    return rows, [f"class {c}" for c in range(10)]


def write_augmenter_demo(out_dir: Path, seed: int = 0) -> Path:
    """Write ``generative_augmenters.png``: the rows of :func:`augmenter_grid`, labelled.

    Example:
        >>> write_augmenter_demo(Path("outputs/demo"))  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, column_titles = augmenter_grid(seed)
    cols = max(len(r[1]) for r in rows)
    strips = sum(1 for r in rows if any(r[2]))
    heights = [1.0] * (len(rows) - strips) + [1.45] * strips  # room for the strips' captions
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.95 + 2.1, sum(heights) * 0.95 + 0.9),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for r, (label, images, captions) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(images):
                ax.axis("off")
                continue
            ax.imshow(images[c, 0].float().numpy() / (255.0 if images.dtype == torch.uint8 else 1.0),
                      cmap="gray", vmin=0, vmax=1)
            if r == 0:
                ax.set_title(column_titles[c], fontsize=8)
            if captions[c]:
                ax.set_title(captions[c], fontsize=6.5)
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8.5, labelpad=6)
    fig.suptitle(f"genaug generative augmenters on real mnist5k test digits (seed {seed})", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(Path(out_dir) / "generative_augmenters.png", buffer.getvalue())
