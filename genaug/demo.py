"""``genaug demo``: every transform on the built-in photos, as a labelled PNG grid plus its params;
the shipped generative models' samples and augmenters; and a short robustness report of the
shipped classifier (a few corruptions at severities 1..5) with a corruption grid; and a synthetic
ImageFolder of 1,000 cGAN digits with its manifest (what ``genaug generate`` writes).

Example:
    >>> from genaug.demo import run_demo            # doctest: +SKIP
    >>> paths = run_demo("outputs/demo")            # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

import genaug as ga
from genaug._atomic import atomic_write_bytes
from genaug.generative.demo import write_augmenter_demo, write_generative_demo
from genaug.transforms.base import Params

AUGMENTATIONS_PER_IMAGE = 8


def demo_pipeline(seed: int = 0) -> ga.Compose:
    """A pipeline that uses every batched transform; its nine geometric ops fuse into one warp."""
    return ga.Compose(
        [
            ga.Resize(256),
            ga.CenterCrop((240, 320)),
            ga.RandomCrop((224, 288), padding=8, padding_mode="reflect"),
            ga.RandomResizedCrop((192, 256), scale=(0.4, 1.0)),
            ga.RandomRotation(degrees=25, padding_mode="reflect"),
            ga.RandomScale(scale=(0.85, 1.2), padding_mode="reflect"),
            ga.RandomAffine(degrees=0, translate=(0.05, 0.05), shear=8, padding_mode="reflect"),
            ga.RandomHorizontalFlip(p=0.5),
            ga.RandomVerticalFlip(p=0.15),
            ga.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.4, hue=0.06),
            ga.RandomGaussianBlur(kernel_size=7, sigma=(0.1, 1.8), p=0.4),
            ga.RandomBilateralBlur(kernel_size=5, p=0.3),
            ga.RandomGaussianNoise(std=(0.0, 0.05), p=0.4),
        ],
        padding_mode="reflect",
        seed=seed,
    )


def load_photos() -> list[torch.Tensor]:
    """scikit-learn's two sample photos as uint8 ``(3, H, W)`` tensors."""
    from genaug.data import load_builtin

    return list(load_builtin("photos", split="all").images)


#: Short per-sample labels for the grid: transform name -> (params, sample index) -> text.
_CAPTIONS = {
    "RandomRotation": lambda p, i: f"rot {float(p['angle'][i]):+.0f}°",
    "RandomScale": lambda p, i: f"zoom {float(p['scale'][i]):.2f}",
    "RandomAffine": lambda p, i: f"shear {float(p['shear'][i, 0]):+.0f}°",
    "RandomHorizontalFlip": lambda p, i: "hflip",
    "RandomVerticalFlip": lambda p, i: "vflip",
    "ColorJitter": lambda p, i: f"b{float(p['brightness'][i]):.2f} h{float(p['hue'][i]):+.2f}",
    "RandomGaussianBlur": lambda p, i: f"blur σ{float(p['sigma'][i]):.1f}",
    "RandomBilateralBlur": lambda p, i: "bilateral",
    "RandomGaussianNoise": lambda p, i: f"noise {float(p['std'][i]):.2f}",
}


def _caption(pipeline: ga.Compose, params: Params, i: int) -> str:
    """A short per-sample description of the sampled parameters."""
    parts = []
    for k, t in enumerate(pipeline.transforms):
        p, label = params[str(k)], _CAPTIONS.get(type(t).__name__)
        if label is not None and bool(p["apply"][i]):
            parts.append(label(p, i))
    lines, line = [], ""
    for part in parts:
        if len(line) + len(part) > 26:
            lines.append(line)
            line = ""
        line = f"{line}, {part}" if line else part
    return "\n".join([*lines, line])


def _plain(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: _plain(v) for k, v in params.items()}
    if isinstance(params, torch.Tensor):
        return params.tolist()
    return params


def write_transform_grid(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``transforms_grid.png`` (original + 8 augmentations per photo) and ``transforms_params.json``."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pipeline = demo_pipeline(seed)
    photos = load_photos()
    n = AUGMENTATIONS_PER_IMAGE
    fig, axes = plt.subplots(len(photos), n + 1, figsize=(2.2 * (n + 1), 2.9 * len(photos)), squeeze=False)
    all_params = {"pipeline": pipeline.to_dict(), "samples": []}
    for row, photo in enumerate(photos):
        batch = photo.unsqueeze(0).expand(n, -1, -1, -1)
        out, params = pipeline(batch, return_params=True)
        all_params["samples"].append({"image": row, "params": _plain(params)})
        cells = [(photo, "original")] + [(out[i], _caption(pipeline, params, i)) for i in range(n)]
        for col, (img, title) in enumerate(cells):
            ax = axes[row, col]
            ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fused = sum(t.kind == "geometric" for t in pipeline.transforms)
    fig.suptitle(f"genaug demo: {fused} geometric ops fused into one warp per batch (seed {seed})", fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    grid_path, params_path = out_dir / "transforms_grid.png", out_dir / "transforms_params.json"
    atomic_write_bytes(grid_path, buffer.getvalue())
    atomic_write_bytes(params_path, (json.dumps(all_params, indent=1) + "\n").encode())
    return grid_path, params_path


#: The demo's robustness report: the shipped classifier on the first mnist5k test images, under a
#: few corruptions of the benchmark (CIFAR-10-C table, as 28 px images pick) at severities 1..5.
ROBUSTNESS_IMAGES = 256
ROBUSTNESS_CORRUPTIONS = ("gaussian_noise", "defocus_blur", "fog")


def write_robustness_demo(out_dir: Path, seed: int = 0, n_images: int = ROBUSTNESS_IMAGES,
                          corruptions: tuple[str, ...] = ROBUSTNESS_CORRUPTIONS) -> list[Path]:
    """Write a short robustness report of ``mnist-classifier`` and a corruption grid; return the paths.

    ``robustness.md`` / ``.json`` / ``.csv`` / ``.png`` (:func:`genaug.robustness.evaluate` on the first
    ``n_images`` mnist5k test images, ``corruptions`` at severities 1..5, no baseline: errors only)
    and ``robustness_grid.png`` (one test digit under the same corruptions, severities 1..5). The full
    benchmark is ``genaug robustness --model mnist-classifier --data mnist5k:test --out DIR``.

    Example:
        >>> from pathlib import Path
        >>> write_robustness_demo(Path("outputs/demo"))  # doctest: +SKIP
    """
    from genaug.data import load_builtin
    from genaug.robustness import evaluate, write_report
    from genaug.robustness.report import corruption_grid

    out_dir = Path(out_dir)
    test = load_builtin("mnist5k", split="test")
    model = ga.load_model("mnist-classifier")
    # the split is sorted by class: a seeded random subset covers every digit
    idx = torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(seed))[:n_images]
    result = evaluate(model, (test.images[idx], test.labels[idx]), corruptions=list(corruptions),
                      severities=(1, 2, 3, 4, 5), seed=seed, progress=False, model_name="mnist-classifier",
                      data_name=f"mnist5k test ({n_images} random images, seed {seed})")
    report = write_report(result, out_dir, stem="robustness")
    grid = corruption_grid(test.images[0], out_dir / "robustness_grid.png", seed=seed, names=list(corruptions))
    return [report["md"], report["png"], report["json"], report["csv"], grid]


#: The demo's synthetic dataset: images sampled from the shipped cGAN into an ImageFolder.
SYNTHETIC_IMAGES = 1000
SYNTHETIC_FOLDER = "synthetic_mnist"


def write_synthetic_demo(out_dir: Path, seed: int = 0, n_images: int = SYNTHETIC_IMAGES) -> list[Path]:
    """Export ``n_images`` balanced mnist-cgan samples to ``out_dir/synthetic_mnist`` as an ImageFolder.

    The same export as ``genaug generate --model mnist-cgan --num N --seed SEED --out DIR``: one PNG per
    image in a folder per class, ``manifest.jsonl`` (one row per image) and ``dataset.json``. Rerunning
    it verifies the files instead of rewriting them. Returns the folder, its manifest and dataset.json.

    Example:
        >>> from pathlib import Path
        >>> write_synthetic_demo(Path("outputs/demo"))  # doctest: +SKIP
    """
    from genaug.data import export_synthetic

    folder = Path(out_dir) / SYNTHETIC_FOLDER
    export_synthetic("mnist-cgan", n_images, folder, seed=seed, format="imagefolder", progress=False,
                     rank=0, world_size=1, command=f"genaug demo (write_synthetic_demo, seed={seed})")
    return [folder, folder / "manifest.jsonl", folder / "dataset.json"]


def run_demo(out_dir: str | os.PathLike[str] = "outputs/demo", seed: int = 0) -> list[Path]:
    """Run every part of the demo into ``out_dir`` and return the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = list(write_transform_grid(out, seed))
    paths.extend(write_generative_demo(out))
    paths.append(write_augmenter_demo(out, seed))
    paths.extend(write_robustness_demo(out, seed))
    paths.extend(write_synthetic_demo(out, seed))
    return paths
