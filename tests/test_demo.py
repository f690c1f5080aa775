"""`genaug demo`'s parts write what the README lists, readable by the tools it names."""

from __future__ import annotations

import json

import torch
from PIL import Image

from genaug.data.export_io import decode_image
from genaug.demo import SYNTHETIC_FOLDER, write_robustness_demo, write_synthetic_demo


def test_synthetic_demo_is_an_imagefolder_with_manifest_and_resumes(tmp_path):
    from torchvision.datasets import ImageFolder

    import genaug as ga

    folder, manifest, header = write_synthetic_demo(tmp_path, seed=1, n_images=30)
    assert folder == tmp_path / SYNTHETIC_FOLDER and manifest.is_file() and header.is_file()
    ds = ImageFolder(str(folder))
    assert len(ds) == 30 and ds.classes == [str(k) for k in range(10)]
    rows = ga.data.read_manifest(folder)
    assert [r["label"] for r in rows] == [i % 10 for i in range(30)]
    expected = ga.SyntheticDataset("mnist-cgan", length=30, seed=1).get_batch(range(30))[0]
    loaded = torch.stack([decode_image(folder / r["file"]) for r in rows])
    assert torch.equal(loaded, expected)  # the PNGs hold exactly the model's samples
    info = json.loads(header.read_text())
    assert info["complete"] and info["class_counts"] == {str(k): 3 for k in range(10)}
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    res = ga.data.export_synthetic("mnist-cgan", 30, folder, seed=1, progress=False, rank=0, world_size=1,
                                   command=info["command"])
    assert res.written == 0 and res.verified == 30  # a second demo run only verifies
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_robustness_demo_writes_report_and_grid(tmp_path):
    paths = write_robustness_demo(tmp_path, n_images=16, corruptions=("fog",))
    assert [p.name for p in paths] == ["robustness.md", "robustness.png", "robustness.json", "robustness.csv",
                                       "robustness_grid.png"]
    report = json.loads((tmp_path / "robustness.json").read_text())
    assert report["n"] == 16 and list(report["errors"]) == ["fog"] and len(report["errors"]["fog"]) == 5
    assert all(0.0 <= e <= 1.0 for e in report["errors"]["fog"]) and report["model"] == "mnist-classifier"
    assert "random" in report["data"]  # the split is sorted by class: its first 16 images are all zeros
    for png in (tmp_path / "robustness.png", tmp_path / "robustness_grid.png"):
        with Image.open(png) as im:
            assert im.size[0] > 200 and im.size[1] > 100
