"""`genaug evaluate-generator` end to end (tiny settings), the report's files, determinism, errors, docs."""

import doctest
import importlib
import json
import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from genaug.cli import main
from genaug.data import load_builtin
from genaug.metrics import evaluate_samples, write_report

DOCS = Path(__file__).resolve().parents[1] / "docs" / "METRICS.md"
TINY = ["--num", "200", "--cas-steps", "3", "--cas-per-class", "20", "--kid-subsets", "5", "--no-progress",
        "--threads", "1"]


def test_cli_report_for_the_shipped_vae(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate-generator", "--model", "mnist-cvae", "--data", "mnist5k:test", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    for label in ("FID", "KID", "precision", "recall", "CAS", "GAN-test", "diversity", "coverage", "PSNR", "SSIM"):
        assert label in printed
    assert "real mnist5k:train" in printed
    assert sorted(p.name for p in out.iterdir()) == ["per_class.png", "report.json", "report.md", "samples.png"]
    rep = json.loads((out / "report.json").read_text())
    s, fl = rep["summary"], rep["floor"]["summary"]
    assert rep["num"] == 200 and rep["extractor"] == "mnist-classifier" and rep["model"] == "mnist-cvae"
    assert s["fid"] > fl["fid"] > 0 and s["psnr"] > 15 and 0.5 < s["ssim"] < 1 and 0 <= s["cas"]
    assert fl["gan_test"] == pytest.approx(0.967) and fl["cas"] == 1.0
    assert set(rep["per_class"]["gan_test"]) == {str(c) for c in range(10)}
    assert rep["command"].startswith("genaug evaluate-generator --model mnist-cvae")
    assert rep["details"]["model_sha256"]
    md = (out / "report.md").read_text()
    assert "| FID |" in md and "![samples](samples.png)" in md and "![per_class](per_class.png)" in md
    for png, min_size in (("samples.png", (600, 500)), ("per_class.png", (900, 250))):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]          # no temporary files left


def test_same_call_same_report_and_collapse_shows(tmp_path):
    test = load_builtin("mnist5k", "test")
    train = load_builtin("mnist5k", "train")
    kw = dict(cas_seeds=(), floor=False, kid_subsets=5, progress=False)
    samples = (train.images[::20], train.labels[::20])                      # 200 real digits as "samples"
    a, b = evaluate_samples(samples, "mnist5k:test", **kw), evaluate_samples(samples, test, **kw)
    assert a.to_dict()["summary"] == b.to_dict()["summary"]
    one_per_class = (train.images[::400].repeat_interleave(20, 0), train.labels[::400].repeat_interleave(20))
    c = evaluate_samples(one_per_class, "mnist5k:test", **kw)
    assert c.summary["diversity"] == 0.0 and c.summary["recall"] < 0.05 < a.summary["recall"]
    assert c.summary["gan_test"] == 1.0                                    # the trap: accuracy looks perfect
    paths = write_report(c, tmp_path)
    assert (tmp_path / "report.md").read_text().count("| 0.000 |") >= 1 and len(paths) == 4


@pytest.mark.filterwarnings("ignore:FID from 16 samples")
def test_samples_from_an_image_folder(tmp_path, capsys):
    test = load_builtin("mnist5k", "test")
    for c in (3, 7):                                                        # folders named by class, grey PNGs
        (tmp_path / "syn" / str(c)).mkdir(parents=True)
        for i, img in enumerate(test.images[test.labels == c][:8]):
            Image.fromarray(img[0].numpy()).save(tmp_path / "syn" / str(c) / f"{i}.png")
    out = tmp_path / "eval"
    rc = main(["evaluate-generator", "--samples", f"imagefolder:{tmp_path / 'syn'}", "--out", str(out), "--no-floor",
               "--cas-seeds", "--kid-subset-size", "10", *TINY[6:]])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((out / "report.json").read_text())
    assert rep["num"] == 16 and set(rep["per_class"]["gan_test"]) == {"3", "7"}    # labels kept as 3 and 7
    assert rep["summary"]["gan_test"] == 1.0 and rep["summary"]["cas"] is None


@pytest.mark.parametrize("argv, message", [
    (["--model", "mnist-cgan", "--data", "mnist9k:test"], r"unknown dataset 'mnist9k'; allowed: mnist5k, digits"),
    (["--model", "mnist-cgan", "--data", "mnist5k:val"], r"unknown split 'val'"),
    (["--model", "mnist-classifier"], r"cannot sample"),
    (["--model", "mnist-cgan", "--num", "1"], r"num=1 must be an int >= 2"),
    (["--model", "mnist-cgan", "--data", "photos"], r"generated images are 1x28x28 but photos:test images are 3x427x640"),
    (["--model", "mnist-cgan", "--num", "20", "--kid-subset-size", "50"], r"subset_size=50 is not allowed"),
])
def test_cli_errors(tmp_path, capsys, argv, message):
    assert main(["evaluate-generator", *argv, "--out", str(tmp_path), "--no-progress", "--cas-seeds"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genaug evaluate-generator: error:") and re.search(message, err), err
    assert not list(tmp_path.iterdir())


def test_docs_examples_run(tmp_path, monkeypatch):
    """The python examples in docs/METRICS.md run as written (a block after `doc-test: skip` is not run)."""
    blocks = re.findall(r"(<!-- doc-test: skip[^>]*-->\s*)?```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    runnable = [code for skip, code in blocks if not skip]
    assert runnable
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    torch.manual_seed(0)
    for code in runnable:
        exec(compile(code, str(DOCS), "exec"), namespace)


@pytest.mark.parametrize("name", ["genaug.metrics", "genaug.metrics.inputs", "genaug.metrics.features",
                                  "genaug.metrics.distribution", "genaug.metrics.knn_manifold",
                                  "genaug.metrics.variety", "genaug.metrics.classifier_accuracy", "genaug.metrics.image_quality",
                                  "genaug.metrics.report", "genaug.metrics.cli"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.filterwarnings("ignore:FID from 10 samples")
def test_diversity_without_pairs_is_undefined_not_zero(tmp_path):
    """One image per class has no within-class pairs: diversity is None ("n/a" and why), never the 0 of collapse."""
    from genaug.metrics import diversity

    test = load_builtin("mnist5k", "test")
    one_each = (test.images[::100], test.labels[::100])                      # 10 distinct digits, one per class
    d = diversity(test, one_each)
    assert d.score is None and set(d.per_class.values()) == {None}
    assert d.reason.startswith("undefined, not 0") and "every class has at most 1 generated image" in d.reason
    collapsed = diversity(test, (one_each[0].repeat_interleave(3, 0), one_each[1].repeat_interleave(3)))
    assert collapsed.score == 0.0 and collapsed.reason is None              # a real collapse still scores 0

    rep = evaluate_samples(one_each, test, cas_seeds=(), floor=False, kid_subsets=2, kid_subset_size=5, progress=False)
    assert rep.summary["diversity"] is None
    why = rep.details["not_available"]["diversity"]
    assert why == d.reason
    table = rep.table()
    assert re.search(r"^diversity \(fake / real\) +n/a", table, flags=re.M)
    assert f"diversity (fake / real) is n/a: {why}" in table
    paths = write_report(rep, tmp_path)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["summary"]["diversity"] is None and saved["details"]["not_available"]["diversity"] == why
    md = (tmp_path / "report.md").read_text()
    assert "| diversity (fake / real) | n/a |" in md and f"- diversity (fake / real) is n/a: {why}" in md
    assert {p.name for p in paths} == {"report.json", "report.md", "samples.png", "per_class.png"}


@pytest.mark.filterwarnings("ignore:FID from 4 samples")
def test_cli_prints_why_diversity_is_na(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate-generator", "--model", "mnist-cgan", "--out", str(out), "--num", "4", "--cas-seeds",
            "--no-floor", "--kid-subsets", "3", "--no-progress", "--threads", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^diversity \(fake / real\) +n/a", printed, flags=re.M), printed
    assert "diversity (fake / real) is n/a: undefined, not 0" in printed
    assert json.loads((out / "report.json").read_text())["summary"]["diversity"] is None


def _one_line_error(capsys, command="evaluate-generator"):
    err = capsys.readouterr().err
    assert err.startswith(f"genaug {command}: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("device, message", [
    ("nosuch", r"--device='nosuch' is not a device name torch knows; allowed: auto, cpu, cuda, cuda:N, mps, xpu "
               r"\(this machine has: cpu"),
    ("cuda:99", r"--device='cuda:99': (CUDA is not available on this machine|there is no such device)"
                r".*this machine has: cpu"),
    ("meta", r"--device='meta': device type 'meta' is not supported; allowed: auto, cpu"),
])
def test_cli_bad_device_fails_up_front(tmp_path, capsys, monkeypatch, device, message):
    import genaug.metrics.report as report

    def never(*a, **k):
        raise AssertionError("evaluation started despite a bad --device")
    monkeypatch.setattr(report, "evaluate_generator", never)
    assert main(["evaluate-generator", "--model", "mnist-cgan", "--out", str(tmp_path / "o"), "--device", device,
                 "--no-progress"]) == 2
    assert re.search(message, _one_line_error(capsys))
    assert not (tmp_path / "o").exists()


def test_python_api_bad_device_is_a_value_error():
    from genaug.metrics.report import resolve_device

    with pytest.raises(ValueError, match=r"device='nosuch' is not a device name torch knows"):
        evaluate_samples(torch.zeros(4, 1, 28, 28), "mnist5k:test", device="nosuch", progress=False)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == torch.device("cpu") == resolve_device(torch.device("cpu"))


def test_generator_with_fewer_classes_than_the_reference_says_so(tmp_path, capsys):
    from genaug.generative import ConditionalVAE, VAEConfig, save_checkpoint

    torch.manual_seed(0)
    path = save_checkpoint(ConditionalVAE(VAEConfig(enc_width=4, dec_width=4, latent_dim=4, num_classes=4)),
                           tmp_path / "vae4.safetensors")
    out = tmp_path / "eval"
    assert main(["evaluate-generator", "--model", str(path), "--out", str(out), "--num", "40", "--cas-seeds",
                 "--no-floor", "--kid-subsets", "3", "--no-progress", "--threads", "1"]) == 2
    err = _one_line_error(capsys)
    assert re.search(r"the generator has 4 classes \(labels 0\.\.3\) but the reference data mnist5k:test has labels "
                     r"up to 9; PSNR / SSIM of its reconstructions need .* labels 0\.\.3 \(--data\)", err), err
    assert not out.exists()                                                # the folder it created is removed again
