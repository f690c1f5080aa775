"""``genaug generate`` / ``genaug augment``: formats, determinism, atomicity, resume, scale-out, bad input.

Sizes are tiny (tens of 28x28 images, blocks of 16) so the whole file runs in well under a minute on
two cores; the guarantees do not depend on size.
"""

from __future__ import annotations

import doctest
import importlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genaug as ga
from genaug.cli import main
from genaug.data.export import export_augmented, export_synthetic, load_export, read_manifest
from genaug.data.export_io import decode_image
from genaug.data.export_sources import params_from_json, params_to_json

ROOT = Path(__file__).resolve().parents[1]
GEN = ["generate", "--model", "mnist-cgan", "--block-size", "16", "--no-progress"]


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (hidden ones too) -> its bytes."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def run_cli(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture(scope="module")
def clean_if(tmp_path_factory) -> Path:
    """A reference ImageFolder export of 80 digits (5 shards of 16)."""
    out = tmp_path_factory.mktemp("ref") / "if"
    assert run_cli(*GEN, "--num", "80", "--shard-size", "16", "--out", str(out)) == 0
    return out


@pytest.fixture(scope="module")
def clean_wds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "wds"
    assert run_cli(*GEN, "--num", "80", "--shard-size", "32", "--format", "webdataset", "--out", str(out)) == 0
    return out


@pytest.fixture(scope="module")
def source_folder(tmp_path_factory) -> Path:
    """An ImageFolder source: two classes, RGB and gray, two sizes, a broken PNG and a text file."""
    root = tmp_path_factory.mktemp("src") / "src"
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            shape = (32, 32, 3) if i % 2 == 0 else (36, 30, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / c / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(root / "cat" / "gray.jpg")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pipe") / "aug.yaml"
    ga.save_pipeline(ga.Compose([ga.RandomResizedCrop(24, scale=(0.5, 1.0)), ga.RandomRotation(20),
                                 ga.ColorJitter(0.3, 0.3), ga.RandomGaussianBlur(3, (0.1, 1.0), p=0.5)], seed=3), path)
    return path


# ----------------------------------------------------------------------------- formats and readers
def test_imagefolder_is_read_by_torchvision_and_equals_the_dataset(clean_if):
    from torchvision.datasets import ImageFolder

    folder = ImageFolder(str(clean_if))
    rows = read_manifest(clean_if)
    assert len(folder) == len(rows) == 80 and folder.classes == [str(c) for c in range(10)]
    by_file = {r["file"]: r for r in rows}
    for path, target in folder.samples:
        row = by_file[Path(path).relative_to(clean_if).as_posix()]
        assert target == row["label"] == row["index"] % 10
    ds = ga.SyntheticDataset("mnist-cgan", length=80, seed=0, block_size=16)
    x, _ = ds.get_batch(range(80))
    exported = torch.stack([decode_image(clean_if / r["file"]) for r in rows])
    assert torch.equal(exported, x)  # item k of the export is SyntheticDataset(...)[k]
    header = json.loads((clean_if / "dataset.json").read_text())
    assert header["complete"] and header["num_images"] == 80 and header["class_counts"]["3"] == 8
    assert header["identity"]["model"]["name"] == "mnist-cgan" and "--num 80" in header["command"]
    assert rows[5]["seed"] == ds.latent_seed(5) and len(rows[5]["model_sha256"]) == 64
    assert not [p for p in clean_if.iterdir() if p.name.startswith(".")]  # no state or temp files left


def test_webdataset_package_reads_the_shards(clean_wds):
    import webdataset as wds

    header = json.loads((clean_wds / "dataset.json").read_text())
    assert header["webdataset_urls"] == "shard-{000000..000002}.tar"
    assert sorted(p.name for p in clean_wds.glob("*.tar")) == [f"shard-{s:06d}.tar" for s in range(3)]
    urls = str(clean_wds / header["webdataset_urls"])
    reader = wds.WebDataset(urls, shardshuffle=False).decode("torchrgb")
    samples = list(reader.to_tuple("__key__", "png", "cls", "json"))
    rows = read_manifest(clean_wds)
    assert [s[0] for s in samples] == [r["key"] for r in rows] == [f"{i:08d}" for i in range(80)]
    assert [s[2] for s in samples] == [r["label"] for r in rows]
    assert samples[7][3]["index"] == 7 and samples[7][1].shape == (3, 28, 28)
    ds = load_export(clean_wds)  # genaug's own reader
    assert ds.images.shape == (80, 1, 28, 28) and torch.equal(ds.labels, torch.arange(80) % 10)
    expected = ga.SyntheticDataset("mnist-cgan", length=80, seed=0, block_size=16).get_batch(range(80))[0]
    assert torch.equal(ds.images, expected)


def test_bytes_are_fixed_tar_headers_and_png_chunks(clean_if, clean_wds, tmp_path):
    again = tmp_path / "again"
    assert run_cli(*GEN, "--num", "80", "--shard-size", "32", "--format", "webdataset", "--out", str(again)) == 0
    assert tree(again) == tree(clean_wds)  # byte-identical, dataset.json and manifest included
    raw = (clean_wds / "shard-000000.tar").read_bytes()
    assert raw[257:265] == b"ustar\x0000"  # USTAR, no PAX/GNU extension headers
    with tarfile.open(clean_wds / "shard-000000.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:3]] == ["00000000.cls", "00000000.json", "00000000.png"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode, m.type) for m in members} == \
        {(0, 0, 0, "", "", 0o644, tarfile.REGTYPE)}
    png = (clean_if / "0" / "00000000.png").read_bytes()
    for chunk in (b"tIME", b"tEXt", b"iTXt", b"zTXt", b"pHYs", b"iCCP"):
        assert chunk not in png


def test_params_round_trip_exactly():
    aug = ga.Compose([ga.RandomRotation(30), ga.ColorJitter(0.4, 0.4, 0.4, 0.1)], seed=0)
    x = torch.rand(2, 3, 16, 16)
    out, params = aug(x, return_params=True)
    back = params_from_json(json.loads(json.dumps(params_to_json(params))))
    assert torch.equal(aug(x, params=back), out)


# ----------------------------------------------------------------------------- resume and repair
def test_rerun_verifies_and_repairs_corruption(clean_if, tmp_path):
    out = tmp_path / "if"
    assert run_cli(*GEN, "--num", "80", "--shard-size", "16", "--out", str(out)) == 0
    (out / "3" / "00000003.png").write_bytes(b"garbage")                                  # corrupted
    with open(out / "7" / "00000017.png", "r+b") as f:                                    # truncated
        f.truncate(20)
    (out / "5" / "00000065.png").unlink()                                                 # missing
    (out / "2" / "00000099.png").write_bytes((out / "2" / "00000002.png").read_bytes())  # stray duplicate
    (out / "1" / ".00000001.png.tmp").write_bytes(b"half")                                # left by a crash
    res = export_synthetic("mnist-cgan", 80, out, shard_size=16, block_size=16, progress=False,
                           command=json.loads((out / "dataset.json").read_text())["command"])
    assert (res.written, res.repaired) == (1, 2) and res.verified == 77 and res.complete
    assert tree(out) == tree(clean_if)
    res = export_synthetic("mnist-cgan", 80, out, shard_size=16, block_size=16, progress=False,
                           command=json.loads((out / "dataset.json").read_text())["command"])
    assert (res.written, res.repaired, res.verified) == (0, 0, 80)


def test_damaged_manifest_and_shard_are_rebuilt(clean_wds, tmp_path):
    out = tmp_path / "wds"
    assert run_cli(*GEN, "--num", "80", "--shard-size", "32", "--format", "webdataset", "--out", str(out)) == 0
    manifest = (out / "manifest.jsonl").read_bytes()
    (out / "manifest.jsonl").write_bytes(manifest[: len(manifest) // 2])
    with open(out / "shard-000001.tar", "r+b") as f:
        f.truncate(5000)
    assert run_cli(*GEN, "--num", "80", "--shard-size", "32", "--format", "webdataset", "--out", str(out)) == 0
    assert tree(out) == tree(clean_wds)


@pytest.mark.parametrize("fmt", ["imagefolder", "webdataset"])
def test_kill_9_at_a_random_point_then_resume(fmt, clean_if, clean_wds, tmp_path):
    """SIGKILL a real export process mid-run; nothing partial is visible; the rerun equals a clean export."""
    clean = clean_if if fmt == "imagefolder" else clean_wds
    shard = "16" if fmt == "imagefolder" else "32"
    args = [*GEN, "--num", "80", "--shard-size", shard, "--format", fmt]
    out = tmp_path / "killed"
    rng = random.Random()
    target = rng.randint(1, 75 if fmt == "imagefolder" else 6)  # kill once this many files (final or temporary) exist
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "genaug.cli", *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_after = None
    try:
        while proc.poll() is None:
            files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
            if len(files) >= target:
                proc.send_signal(signal.SIGKILL)
                killed_after = len(files)
                break
            time.sleep(0.02)
    finally:
        proc.wait()
    ref = tree(clean)
    for rel, data in tree(out).items():
        name = rel.rsplit("/", 1)[-1]
        if name.startswith("."):
            if name.startswith(".genaug-part-") and name.endswith(".json"):
                json.loads(data)  # a shard record under its final name is complete
            continue  # temporary files may be anything: they are never read
        if rel == "dataset.json":
            assert json.loads(data)["identity"] == json.loads(ref[rel])["identity"]
            continue
        assert data == ref[rel], f"partial file {rel} visible after kill -9 (killed after {killed_after} files)"
    assert run_cli(*args, "--out", str(out)) == 0
    assert tree(out) == ref, f"resume after kill -9 (at {killed_after} files) differs from a clean export"


# ----------------------------------------------------------------------------- scale-out
def test_any_world_size_and_resume_with_another(clean_if, tmp_path):
    kw = dict(shard_size=16, block_size=16, progress=False)
    cmd = json.loads((clean_if / "dataset.json").read_text())["command"]
    out = tmp_path / "w3"
    results = [export_synthetic("mnist-cgan", 80, out, rank=r, world_size=3, command=cmd, **kw) for r in range(3)]
    assert [r.shards for r in results] == [2, 2, 1] and [r.finalized for r in results] == [False, False, True]
    assert tree(out) == tree(clean_if)
    out2 = tmp_path / "resume"
    first = export_synthetic("mnist-cgan", 80, out2, rank=0, world_size=2, command=cmd, **kw)  # rank 1 never ran
    assert not first.complete and (out2 / ".genaug-part-000000.json").exists()
    assert not (out2 / "manifest.jsonl").exists()
    for r in range(4):  # resume with 4 ranks: shards of rank 0 (W=2) are verified, the rest written
        res = export_synthetic("mnist-cgan", 80, out2, rank=r, world_size=4, command=cmd, **kw)
    assert res.finalized and tree(out2) == tree(clean_if)


def test_torchrun_two_ranks_equal_one_process(clean_if, tmp_path):
    out = tmp_path / "tr"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "genaug", *GEN, "--num-images", "80", "--shard-size", "16", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rank 1/2: 2 of 5 shards" in proc.stderr + proc.stdout
    assert tree(out) == tree(clean_if)


# ----------------------------------------------------------------------------- identity and bad input
def test_other_run_in_out_is_an_error_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "o"
    assert run_cli(*GEN, "--num", "20", "--out", str(out)) == 0
    (out / "README.txt").write_text("mine")
    assert run_cli(*GEN, "--num", "20", "--seed", "1", "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert "holds a different export (differs in: seed (0 -> 1))" in err and "--overwrite" in err
    assert run_cli(*GEN, "--num", "12", "--seed", "1", "--out", str(out), "--overwrite") == 0
    assert len(read_manifest(out)) == 12 and (out / "README.txt").read_text() == "mine"  # others' files kept
    assert len(list(out.rglob("*.png"))) == 12
    (out / "dataset.json").write_text('{"format": "genaug-exp')  # damaged
    assert run_cli(*GEN, "--num", "12", "--seed", "1", "--out", str(out)) == 2
    assert "dataset.json is unreadable" in capsys.readouterr().err
    assert run_cli(*GEN, "--num", "12", "--seed", "1", "--out", str(out), "--overwrite") == 0
    assert json.loads((out / "dataset.json").read_text())["complete"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    for extra in ([], ["--overwrite"]):
        assert run_cli(*GEN, "--num", "4", "--out", str(foreign), *extra) == 2
        assert "not empty and holds no genaug export" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["generate", "--model", "mnist-cgan", "--num", "0"], "must be >= 1"),
    (["augment", "--data", "mnist5k", "--pipeline", "p.yaml", "--copies", "0"], "must be >= 1"),
])
def test_argument_errors(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(*argv, "--out", str(tmp_path / "o"))
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_inputs_give_clear_errors_and_write_nothing(tmp_path, capsys, source_folder, pipeline_file):
    out = tmp_path / "o"
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: Compose\nargs: {transforms: [{name: NoSuchOp, args: {}}]}\n")
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("name: [unclosed\n")
    cases = [
        (["generate", "--model", "no-such-model", "--num", "4"], "unknown model 'no-such-model'"),
        (["generate", "--model", "mnist-classifier", "--num", "4"], "not a generative model"),
        (["generate", "--model", "mnist-cgan", "--num", "4", "--pipeline", str(bad_yaml)], "cannot load pipeline file"),
        (["generate", "--model", "mnist-cgan", "--num", "4", "--pipeline", str(tmp_path / "none.yaml")],
         "does not exist"),
        (["augment", "--data", f"imagefolder:{tmp_path / 'missing'}", "--pipeline", str(pipeline_file)],
         "source folder"),
        (["augment", "--data", f"imagefolder:{source_folder}", "--pipeline", str(broken_yaml)],
         "cannot load pipeline file"),
        (["augment", "--data", "nosuchset", "--pipeline", str(pipeline_file)], "unknown --data 'nosuchset'"),
        (["augment", "--data", f"imagefolder:{source_folder}", "--pipeline", str(pipeline_file), "--strict"],
         "cannot read source image 'dog/broken.png'"),
        (["augment", "--data", f"imagefolder:{source_folder}", "--pipeline", str(pipeline_file), "--out",
          str(source_folder / "cat" / "out")], "inside the source folder"),
    ]
    for argv, message in cases:
        if "--out" not in argv:
            argv = [*argv, "--out", str(out)]
        assert run_cli(*argv, "--no-progress") == 2, argv
        err = capsys.readouterr().err
        assert message in err, (argv, err)
        strict = "--strict" in argv
        assert not out.exists() or strict, argv
        if strict:  # failed on a source file after starting: nothing partial under a final name
            assert not [p for p in out.rglob("*.png")] or all(p.stat().st_size > 0 for p in out.rglob("*.png"))
            import shutil

            shutil.rmtree(out)


def test_no_write_permission(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() == 0:  # root ignores permissions: make the folder refuse writes the way the OS would
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, m, **k: False if Path(p) == locked / "o" else real(p, m, **k))
            (locked / "o").mkdir()
        assert run_cli(*GEN, "--num", "4", "--out", str(locked / "o")) == 2
        assert "permission denied" in capsys.readouterr().err
        assert not list((locked).rglob("*.png")) and not (locked / "o" / "dataset.json").exists()
    finally:
        locked.chmod(0o700)


# ----------------------------------------------------------------------------- augment
def test_augment_imagefolder_source(tmp_path, source_folder, pipeline_file, capsys):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "aug"
    argv = ["augment", "--data", f"imagefolder:{source_folder}", "--pipeline", str(pipeline_file), "--copies", "3",
            "--shard-size", "5", "--block-size", "4", "--no-progress", "--out", str(out)]
    assert run_cli(*argv) == 0
    assert "skipped 1 unreadable source file" in capsys.readouterr().out
    header = json.loads((out / "dataset.json").read_text())
    assert [s["file"] for s in header["skipped"]] == ["dog/broken.png"]
    assert header["ignored"] == [{"file": "dog/notes.txt", "reason": "not an image file (extension)"}]
    rows = read_manifest(out)
    assert len(rows) == 9 * 3 and header["class_counts"] == {"cat": 15, "dog": 12}
    folder = ImageFolder(str(out))
    assert folder.classes == ["cat", "dog"] and len(folder) == 27
    aug = ga.load_pipeline(pipeline_file)
    for r in rows[::4]:  # each row's params replay its image exactly, alone
        src = decode_image(source_folder / r["source"])
        res = aug(src[None], labels=torch.tensor([r["label"]]), params=params_from_json(r["params"]))
        assert torch.equal(res["image"][0], decode_image(out / r["file"])), r["index"]
    again = tmp_path / "again"
    assert run_cli(*argv[:-1], str(again)) == 0
    assert tree(again) == tree(out)
    split = tmp_path / "split"
    for r in range(2):
        export_augmented(f"imagefolder:{source_folder}", split, pipeline_file, copies=3, shard_size=5, block_size=4,
                         progress=False, rank=r, world_size=2, command=header["command"])
    assert tree(split) == tree(out)


def test_augment_generative_pipeline_to_webdataset(tmp_path):
    import webdataset as wds

    src = tmp_path / "digits"
    images = ga.data.load_builtin("digits", "test").images[:24]
    small = torch.nn.functional.interpolate(images.float(), size=(28, 28), mode="bilinear").round().to(torch.uint8)
    for i, img in enumerate(small):
        d = src / str(i % 3)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy()).save(d / f"{i:02d}.png")
    pipe = tmp_path / "gen.json"
    ga.save_pipeline(ga.Compose([ga.GenerativeSample("mnist-cgan", p=0.5), ga.LatentInterpolate("mnist-cvae", p=0.5),
                                 ga.RandomRotation(10)], seed=1), pipe)
    kw = dict(copies=2, format="webdataset", shard_size=16, block_size=8, progress=False)
    out = tmp_path / "g"
    export_augmented(f"imagefolder:{src}", out, pipe, **kw)
    rows = read_manifest(out)
    assert len(rows) == 48 and any("soft_label" in r for r in rows)
    mixed = next(r for r in rows if "soft_label" in r)
    assert abs(sum(mixed["soft_label"]) - 1) < 1e-5 and mixed["label"] == int(np.argmax(mixed["soft_label"]))
    reader = wds.WebDataset(str(out / "shard-{000000..000002}.tar"), shardshuffle=False).decode()
    samples = list(reader.to_tuple("cls", "json"))
    assert [s[0] for s in samples] == [r["label"] for r in rows]
    split = tmp_path / "split"
    for r in (1, 0):
        export_augmented(f"imagefolder:{src}", split, pipe, rank=r, world_size=2, **kw)
    assert tree(split) == tree(out)


# ----------------------------------------------------------------------------- progress, docs
def test_progress_bar_and_summary(tmp_path, capsys):
    assert run_cli("generate", "--model", "mnist-cgan", "--num", "20", "--block-size", "16", "--out",
                   str(tmp_path / "p")) == 0
    captured = capsys.readouterr()
    assert "img/s" in captured.err and "20/20" in captured.err
    assert "complete: 20 images" in captured.out and "images/s" in captured.out


@pytest.mark.parametrize("name", ["genaug.data.export", "genaug.data.export_io", "genaug.data.export_sources",
                                  "genaug.data.cli"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_docs_export_examples_run(tmp_path, monkeypatch):
    import re

    text = (ROOT / "docs" / "EXPORT.md").read_text()
    blocks = re.findall(r"(<!-- doc-test: skip[^>]*-->\s*)?```python\n(.*?)```", text, flags=re.S)
    runnable = [code for skip, code in blocks if not skip]
    assert runnable
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in runnable:
        exec(compile(code, "docs/EXPORT.md", "exec"), namespace)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision.io decoders (still shipped)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 28, 28), (4, 5, 7), (3, 64, 80), (1, 1, 1)])
def test_png_encoder_is_read_by_pillow_and_torchvision(shape):
    from torchvision.io import decode_png

    from genaug.data.export_io import encode_png

    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    data = encode_png(x)
    assert torch.equal(decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8)), x)
    assert torch.equal(decode_image(data), x if shape[0] != 4 else x[:3])  # sources: RGBA -> RGB
    assert encode_png(x.clone()) == data


def test_tar_writer_matches_tarfile_byte_for_byte(tmp_path):
    from genaug.data.export_io import FILE_MODE, TarShard

    members = [(f"{i:08d}.{ext}", os.urandom(37 * i)) for i in range(20) for ext in ("cls", "json", "png")]
    ref = tmp_path / "ref.tar"
    with tarfile.open(ref, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = \
                len(data), 0, FILE_MODE, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(data))
    shard = TarShard(tmp_path / "shard.tar")
    for name, data in members:
        shard.add(name, data)
    size, sha = shard.commit()
    assert (tmp_path / "shard.tar").read_bytes() == ref.read_bytes() and size == ref.stat().st_size


def test_generate_with_a_pipeline_records_each_images_params(tmp_path):
    aug = ga.Compose([ga.RandomRotation(20), ga.ColorJitter(0.3, 0.3)], seed=5)
    ga.save_pipeline(aug, tmp_path / "aug.yaml")
    out = tmp_path / "g"
    assert run_cli(*GEN, "--num", "24", "--pipeline", str(tmp_path / "aug.yaml"), "--format", "webdataset",
                   "--out", str(out)) == 0
    ds = ga.SyntheticDataset("mnist-cgan", length=24, seed=0, block_size=16, transform=aug)
    rows = read_manifest(out)
    assert torch.equal(load_export(out).images, ds.get_batch(range(24))[0])
    for i in (0, 17, 23):
        assert rows[i]["transform_seed"] == ds.transform_seed(i)
        assert rows[i]["params"] == json.loads(json.dumps(params_to_json(ds.transform_params(i))))
    header = json.loads((out / "dataset.json").read_text())
    assert header["identity"]["pipeline"] == aug.to_dict()


# ----------------------------------------------------------------------------- reading exports back
def test_load_builtin_reads_both_layouts_and_augment_takes_an_export(clean_if, clean_wds, tmp_path, pipeline_file):
    from genaug.data import load_builtin

    for out in (clean_if, clean_wds):
        ds = load_builtin(f"export:{out}")
        ref = load_export(out)
        assert torch.equal(ds.images, ref.images) and torch.equal(ds.labels, ref.labels)
        assert ds.classes == [str(k) for k in range(10)]
    expected = ga.SyntheticDataset("mnist-cgan", length=80, seed=0, block_size=16).get_batch(range(80))[0]
    assert torch.equal(load_builtin(f"export:{clean_wds}").images, expected)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_builtin(f"export:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="holds no genaug export"):
        load_builtin(f"export:{tmp_path}")
    out = tmp_path / "aug"
    res = export_augmented(f"export:{clean_wds}", out, pipeline_file, copies=2, block_size=16, progress=False)
    assert res.complete and len(read_manifest(out)) == 160


def test_python_dash_m_genaug_is_the_cli():
    proc = subprocess.run([sys.executable, "-m", "genaug", "generate", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--num-images" in proc.stdout
