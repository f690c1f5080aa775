"""``genaug generate`` / ``genaug augment`` never delete the user's files, and check ``--device`` first.

* Clean-up (``--overwrite``, and the stray removal that ends every run) removes only names genaug
  writes: in the class folders the export uses, ``INDEX.png`` of its index width; at the top,
  ``dataset.json``, ``manifest.jsonl``, shard records and (webdataset) ``shard-NNNNNN.tar``; and
  the temporary files of those names. ``1.png``, ``cover.png`` or any file in a folder that is not a
  class folder is the user's, and stays.
* ``--device`` is checked before anything is written: a device this machine does not have (no CUDA,
  ``cuda:7`` with one GPU, an unknown name) is exit status 2 and one line naming the argument, the
  value and what is available; no ``dataset.json`` stub is left to block the corrected command.

Tiny exports (20 digits, blocks of 16): the whole file runs in seconds, without a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import genaug as ga
from genaug.cli import main
from genaug.data.export import export_synthetic, load_export, read_manifest
from genaug.data.export_sources import ExportError

GEN = ["generate", "--model", "mnist-cgan", "--block-size", "16", "--no-progress"]


def run_cli(*argv: str) -> int:
    return main(list(argv))


def files(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def user_files(root: Path, names: dict[str, bytes]) -> None:
    for rel, data in names.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def assert_kept(root: Path, names: dict[str, bytes]) -> None:
    missing = sorted(rel for rel in names if not (root / rel).is_file())
    assert not missing, f"the user's files were deleted: {missing}"
    for rel, data in names.items():
        assert (root / rel).read_bytes() == data, rel


# ----------------------------------------------------------------------------- user files survive
# Names a user may keep beside or inside an export: numbered PNGs of other widths, genaug-width names
# in folders the export does not own, hidden ``.tmp`` files of their own, an empty folder.
MINE = {
    "my_notes/1.png": b"user 1", "my_notes/2024.png": b"user 2024", "my_notes/cover.png": b"user cover",
    "my_notes/00000003.png": b"user: genaug's width, but not a class folder",
    "my_notes/.draft.tmp": b"user tmp", "my_notes/.00000003.png.tmp": b"user tmp of a genaug-like name",
    "previews/0.png": b"user 0", "previews/deep/00000001.png": b"user nested",
    "3/3.png": b"user: class folder, other width", "3/000000003.png": b"user: 9 digits in an 8-digit export",
    "3/cover.png": b"user cover in a class folder", "3/.notes.tmp": b"user tmp in a class folder",
    "notes.tmp": b"user top", ".mine.tmp": b"user hidden top", "shard-000000.tar.bak": b"user backup",
}


def test_plain_rerun_keeps_the_users_numbered_pngs(tmp_path):
    """p22: a rerun of a finished imagefolder export deleted every N.png in every sub-folder."""
    out = tmp_path / "synth"
    export_synthetic("mnist-cgan", 20, out, block_size=16, progress=False)
    ref = files(out)
    user_files(out, MINE)
    (out / "empty_folder").mkdir()
    (out / "2" / "00000099.png").write_bytes((out / "2" / "00000002.png").read_bytes())  # genaug's own stray
    res = export_synthetic("mnist-cgan", 20, out, block_size=16, progress=False)
    assert (res.written, res.verified, res.repaired) == (0, 20, 0) and res.complete
    assert_kept(out, MINE)
    assert (out / "empty_folder").is_dir()
    assert not (out / "2" / "00000099.png").exists()  # the documented stray clean-up still works
    assert files(out) == ref | set(MINE)


def test_overwrite_webdataset_keeps_the_users_folders(tmp_path):
    """p15: --overwrite of a webdataset export deleted previews/0.png, previews/1.png."""
    out = tmp_path / "shards"
    export_synthetic("mnist-cgan", 50, out, format="webdataset", shard_size=16, block_size=16, progress=False)
    assert (out / "shard-000003.tar").exists()
    user_files(out, MINE)
    export_synthetic("mnist-cgan", 50, out, format="webdataset", shard_size=16, block_size=16, progress=False)
    assert_kept(out, MINE)
    res = export_synthetic("mnist-cgan", 20, out, format="webdataset", shard_size=16, block_size=16, progress=False,
                           overwrite=True)
    assert res.complete and len(read_manifest(out)) == 20
    assert_kept(out, MINE)
    # genaug's own files of the old export are gone: shards 2 and 3 no longer exist in a 2-shard export
    assert files(out) == set(MINE) | {"dataset.json", "manifest.jsonl", "shard-000000.tar", "shard-000001.tar"}


def test_overwrite_imagefolder_removes_only_its_own_names(tmp_path):
    out = tmp_path / "if"
    assert run_cli(*GEN, "--num", "20", "--out", str(out)) == 0
    genaug_pngs = {r["file"] for r in read_manifest(out)}
    user_files(out, MINE)
    (out / "empty_folder").mkdir()
    (out / "4" / ".00000004.png.tmp").write_bytes(b"left by a killed genaug run")
    (out / ".dataset.json~host~99999999.tmp").write_bytes(b"left by a killed genaug run")
    # another export (webdataset, other seed): the old class folders' PNGs go, the user's files stay
    assert run_cli(*GEN, "--num", "12", "--seed", "1", "--format", "webdataset", "--out", str(out),
                   "--overwrite") == 0
    assert_kept(out, MINE)
    assert (out / "empty_folder").is_dir()
    assert not any((out / f).exists() for f in genaug_pngs)
    assert not (out / "4").exists() and not (out / ".dataset.json~host~99999999.tmp").exists()
    assert (out / "3").is_dir()  # a class folder that holds the user's files is kept
    assert files(out) == set(MINE) | {"dataset.json", "manifest.jsonl", "shard-000000.tar"}
    assert len(load_export(out)) == 12


def test_overwrite_of_an_export_with_a_damaged_dataset_json(tmp_path):
    """Layout, classes and size unknown: only what the export's own manifest lists is removed."""
    out = tmp_path / "dmg"
    assert run_cli(*GEN, "--num", "20", "--out", str(out)) == 0
    genaug_pngs = {r["file"] for r in read_manifest(out)}
    user_files(out, MINE)
    (out / "dataset.json").write_text('{"format": "genaug-exp')  # damaged
    assert run_cli(*GEN, "--num", "12", "--seed", "1", "--format", "webdataset", "--out", str(out),
                   "--overwrite") == 0
    assert_kept(out, MINE)
    assert not any((out / f).exists() for f in genaug_pngs)
    assert files(out) == set(MINE) | {"dataset.json", "manifest.jsonl", "shard-000000.tar"}


def test_overwrite_into_the_same_class_folders_keeps_other_widths(tmp_path):
    """imagefolder over imagefolder: old PNGs of the class folders are replaced, the user's stay."""
    out = tmp_path / "same"
    export_synthetic("mnist-cgan", 20, out, block_size=16, progress=False)
    user_files(out, MINE)
    res = export_synthetic("mnist-cgan", 12, out, seed=1, block_size=16, progress=False, overwrite=True)
    assert res.complete
    assert_kept(out, MINE)
    pngs = {f for f in files(out) if f.endswith(".png")} - set(MINE)
    assert pngs == {r["file"] for r in read_manifest(out)} and len(pngs) == 12


# ----------------------------------------------------------------------------- --device
@pytest.fixture()
def no_cuda(monkeypatch):
    """This machine as one without CUDA (the real case on a CPU-only machine; forced on a GPU one)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture()
def one_gpu(monkeypatch):
    """A machine that reports one CUDA device; only the check runs, no CUDA call is ever made."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pipe") / "aug.yaml"
    ga.save_pipeline(ga.Compose([ga.RandomRotation(10)], seed=0), path)
    return path


def one_error_line(capsys, name: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"genaug {name}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_device_cuda_without_cuda_generate(tmp_path, capsys, no_cuda):
    out = tmp_path / "gen"
    assert run_cli(*GEN, "--num", "10", "--device", "cuda", "--out", str(out)) == 2
    line = one_error_line(capsys, "generate")
    assert "--device='cuda:0'" in line and "CUDA is not available" in line and "this machine has: cpu" in line
    assert not out.exists()


def test_device_cuda_without_cuda_augment_leaves_nothing(tmp_path, capsys, no_cuda, pipeline_file):
    """p21: augment wrote a dataset.json stub ("complete": false) that blocked the corrected rerun."""
    out = tmp_path / "aug"
    argv = ["augment", "--data", "digits", "--pipeline", str(pipeline_file), "--block-size", "16",
            "--no-progress", "--out", str(out)]
    assert run_cli(*argv, "--device", "cuda") == 2
    line = one_error_line(capsys, "augment")
    assert "--device='cuda:0'" in line and "CUDA is not available" in line and "this machine has: cpu" in line
    assert not out.exists()
    assert run_cli(*argv) == 0  # the corrected command is not blocked
    assert json.loads((out / "dataset.json").read_text())["complete"]


def test_device_index_out_of_range(tmp_path, capsys, one_gpu, monkeypatch, pipeline_file):
    out = tmp_path / "o"
    assert run_cli(*GEN, "--num", "10", "--device", "cuda:7", "--out", str(out)) == 2
    line = one_error_line(capsys, "generate")
    assert "--device='cuda:7'" in line and "1 CUDA device(s)" in line and "this machine has: cpu, cuda:0" in line
    monkeypatch.setenv("LOCAL_RANK", "3")  # torchrun with more ranks per machine than GPUs
    assert run_cli("augment", "--data", "digits", "--pipeline", str(pipeline_file), "--device", "cuda",
                   "--no-progress", "--out", str(out)) == 2
    line = one_error_line(capsys, "augment")
    assert "--device='cuda:3'" in line and "LOCAL_RANK" in line and "this machine has: cpu, cuda:0" in line
    monkeypatch.setenv("LOCAL_RANK", "x")
    assert run_cli(*GEN, "--num", "10", "--device", "cuda", "--out", str(out)) == 2
    assert "LOCAL_RANK='x' is not an integer" in one_error_line(capsys, "generate")
    assert not out.exists()


@pytest.mark.parametrize("device, message", [("gpu", "is not a device name torch knows"),
                                             ("mps", "this machine has no MPS device"),
                                             ("meta", "device type 'meta' is not supported")])
def test_unusable_device_names(device, message, tmp_path, capsys, monkeypatch, pipeline_file):
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)
    out = tmp_path / "o"
    assert run_cli(*GEN, "--num", "10", "--device", device, "--out", str(out)) == 2
    line = one_error_line(capsys, "generate")
    assert f"--device={device!r}" in line and message in line and "this machine has: cpu" in line
    assert run_cli("augment", "--data", "digits", "--pipeline", str(pipeline_file), "--device", device,
                   "--no-progress", "--out", str(out)) == 2
    assert message in one_error_line(capsys, "augment")
    assert not out.exists()


def test_python_api_checks_the_device_first(tmp_path, no_cuda, pipeline_file):
    out = tmp_path / "py"
    with pytest.raises(ExportError, match="CUDA is not available"):
        export_synthetic("mnist-cgan", 10, out, block_size=16, device="cuda", progress=False)
    with pytest.raises(ExportError, match="CUDA is not available"):
        ga.data.export_augmented("digits", out, pipeline_file, device=torch.device("cuda"), progress=False)
    assert not out.exists()
    from genaug.data.export_sources import check_device

    assert check_device("cpu") == torch.device("cpu") and check_device(None) is None
