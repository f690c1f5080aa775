"""Robustness reports: JSON (everything), CSV (one row per corruption and severity), Markdown (the
table people paste) and PNG (error vs severity per corruption, and the CE bar chart). Every file
is written atomically (:mod:`genaug._atomic`)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from genaug._atomic import atomic_path, atomic_write_bytes
from genaug.robustness.evaluation import RobustnessResult


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def to_csv(result: RobustnessResult) -> str:
    """``corruption,severity,error,accuracy`` rows (``clean`` first, severity 0), errors as fractions."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["corruption", "severity", "error", "accuracy"])
    writer.writerow(["clean", 0, f"{result.clean_error:.6f}", f"{result.clean_accuracy:.6f}"])
    for name, errs in result.errors.items():
        for s, e in zip(result.severities, errs):
            writer.writerow([name, s, f"{e:.6f}", f"{1 - e:.6f}"])
    return buf.getvalue()


def to_markdown(result: RobustnessResult) -> str:
    """The result as a Markdown table: error (%) per corruption and severity, mean, CE and relative CE."""
    lines = [f"# Robustness: {result.model or 'model'} on {result.data or 'data'}", ""]
    lines.append(f"{result.n} images, severity table `{result.table}`, corruption seed {result.seed}. "
                 "Errors are top-1 error rates in %.")
    lines.append("")
    lines.append(f"- clean error: **{_pct(result.clean_error)} %** (accuracy {_pct(result.clean_accuracy)} %)")
    if result.mce is not None:
        lines.append(f"- mCE: **{_pct(result.mce)} %** (normalised by {result.baseline_name})")
    if result.relative_mce is not None:
        lines.append(f"- relative mCE: **{_pct(result.relative_mce)} %**")
    if getattr(result, "baseline_note", None):
        lines.append(f"- note: {result.baseline_note}")
    lines.append("")
    head = ["corruption", *[f"s{s}" for s in result.severities], "mean"]
    if result.ce is not None:
        head += ["CE", "rel. CE"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for name, errs in result.errors.items():
        row = [name, *[_pct(e) for e in errs], _pct(sum(errs) / len(errs))]
        if result.ce is not None:
            row += [_pct(result.ce.get(name)), _pct((result.relative_ce or {}).get(name))]
        lines.append("| " + " | ".join(row) + " |")
    if result.generative is not None:
        g = result.generative
        lines += ["", f"Generative shift: accuracy on {g.n_per_class} samples per class of "
                  f"{g.generator or 'the generator'}: **{_pct(g.accuracy)} %** (clean test accuracy "
                  f"{_pct(result.clean_accuracy)} %)", "",
                  "| class | " + " | ".join(str(k) for k in range(len(g.per_class))) + " |",
                  "|---|" + "---:|" * len(g.per_class),
                  "| accuracy (%) | " + " | ".join(_pct(a) for a in g.per_class) + " |"]
    return "\n".join(lines) + "\n"


def plot(result: RobustnessResult, path: str | os.PathLike[str]) -> Path:
    """PNG: error vs severity per corruption (left) and CE per corruption (right; mean error without
    a baseline)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1.1, 1]})
    cmap = plt.get_cmap("tab20")
    for k, (name, errs) in enumerate(result.errors.items()):
        ax1.plot(result.severities, [100 * e for e in errs], marker="o", ms=3, color=cmap(k % 20), label=name)
    ax1.axhline(100 * result.clean_error, color="k", ls="--", lw=1, label="clean")
    ax1.set_xlabel("severity")
    ax1.set_ylabel("top-1 error (%)")
    ax1.set_xticks(result.severities)
    ax1.set_title("error vs severity")
    ax1.legend(fontsize=7, ncol=2)
    names = list(result.errors)
    if result.ce is not None:
        values = [100 * result.ce.get(n, float("nan")) for n in names]
        title = f"CE (% of {result.baseline_name}); mCE {_pct(result.mce)} %"
    else:
        values = [100 * sum(e) / len(e) for e in result.errors.values()]
        title = "mean error over severities (%)"
    ax2.barh(range(len(names)), values, color=[cmap(k % 20) for k in range(len(names))])
    ax2.set_yticks(range(len(names)))
    ax2.set_yticklabels(names, fontsize=8)
    ax2.invert_yaxis()
    ax2.set_title(title, fontsize=10)
    fig.suptitle(f"{result.model or 'model'} on {result.data or 'data'} (table {result.table}, n={result.n})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def write_report(result: RobustnessResult, out: str | os.PathLike[str], stem: str = "robustness") -> dict[str, Path]:
    """Write ``{stem}.json``, ``.csv``, ``.md`` and ``.png`` into folder ``out`` (atomically).

    Returns:
        ``{"json": path, "csv": path, "md": path, "png": path}``.
    """
    out = Path(out)
    paths = {
        "json": atomic_write_bytes(out / f"{stem}.json", (json.dumps(result.to_dict(), indent=2) + "\n").encode()),
        "csv": atomic_write_bytes(out / f"{stem}.csv", to_csv(result).encode()),
        "md": atomic_write_bytes(out / f"{stem}.md", to_markdown(result).encode()),
    }
    paths["png"] = plot(result, out / f"{stem}.png")
    return paths


def corruption_grid(image, path: str | os.PathLike[str], table: str | None = None, seed: int = 0,
                    names=None, cell: int | None = None) -> Path:
    """PNG grid: one row per corruption, the clean image then severities 1..5 (atomic write).

    Args:
        image: one ``(C, H, W)`` image (uint8 or float 0..1).
        path: the PNG to write.
        table: severity table (``None``: by image size).
        seed: corruption seed (row ``k``, severity ``s`` use ``corruption_seed(seed, name, s)``).
        names: corruptions to show (default: all 19).
        cell: displayed side of each image in pixels (default: the image's, at least 96).
    """
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    from genaug.robustness.evaluation import corruption_params, corruption_seed
    from genaug.robustness.tables import ALL
    from genaug.robustness.transforms import Corruption

    x = image.unsqueeze(0) if image.dim() == 3 else image[:1]
    h, w = x.shape[-2:]
    names = list(names or ALL)
    cell = cell or max(96, int(w))
    scale = cell / w
    ch_, cw_ = int(round(h * scale)), cell
    label_w, pad = 130, 2
    canvas = Image.new("RGB", (label_w + 6 * (cw_ + pad), 16 + len(names) * (ch_ + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(["clean", *[f"severity {s}" for s in range(1, 6)]]):
        draw.text((label_w + j * (cw_ + pad) + 4, 2), title, fill="black")

    def tile(t: torch.Tensor) -> Image.Image:
        t = t[0]
        t = (t.float() / 255 if t.dtype == torch.uint8 else t.float()).clamp(0, 1)
        arr = (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
        return img.convert("RGB").resize((cw_, ch_), Image.NEAREST)

    for i, name in enumerate(names):
        y0 = 16 + i * (ch_ + pad)
        draw.text((4, y0 + ch_ // 2 - 6), name, fill="black")
        canvas.paste(tile(x), (label_w, y0))
        for s in range(1, 6):
            op = Corruption(name, s, table=table, seed=0)
            out = op(x, params=corruption_params(op, corruption_seed(seed, name, s), 0, (int(h), int(w)), 1))
            canvas.paste(tile(out), (label_w + s * (cw_ + pad), y0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
