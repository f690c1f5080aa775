"""CE / mCE / relative mCE on hand-computed examples; evaluate(), the reports, the CLI and the docs example."""

import json
import re
from pathlib import Path

import pytest
import torch

import genaug as ga
from genaug.robustness import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, BENCHMARK, mce, relative_mce
from genaug.robustness.evaluation import RobustnessResult, evaluate
from genaug.robustness.formulas import corruption_errors, relative_corruption_errors

DOCS = Path(__file__).resolve().parents[1] / "docs" / "ROBUSTNESS.md"


def test_mce_and_relative_mce_by_hand():
    # Hendrycks & Dietterich (2019): CE_c = sum_s E_sc / sum_s E^base_sc; mCE = mean_c CE_c;
    # relative CE_c = sum_s (E_sc - E_clean) / sum_s (E^base_sc - E^base_clean).
    errors = {"gaussian_noise": [0.1, 0.2, 0.3, 0.4, 0.5], "fog": [0.2, 0.2, 0.2, 0.2, 0.2]}
    base = {"gaussian_noise": [0.5, 0.6, 0.7, 0.8, 0.9], "fog": [0.4, 0.4, 0.5, 0.5, 0.6]}
    # by hand: CE_gauss = 1.5 / 3.5 = 0.428571..., CE_fog = 1.0 / 2.4 = 0.416666...
    assert corruption_errors(errors, base) == pytest.approx({"gaussian_noise": 1.5 / 3.5, "fog": 1.0 / 2.4})
    assert mce(errors, base) == pytest.approx((1.5 / 3.5 + 1.0 / 2.4) / 2)
    # relative, clean errors 0.05 (model) and 0.3 (baseline):
    # gauss: (1.5 - 0.25) / (3.5 - 1.5) = 0.625; fog: (1.0 - 0.25) / (2.4 - 1.5) = 0.8333...
    rel = relative_corruption_errors(errors, 0.05, base, 0.3)
    assert rel == pytest.approx({"gaussian_noise": 0.625, "fog": 0.75 / 0.9})
    assert relative_mce(errors, 0.05, base, 0.3) == pytest.approx((0.625 + 0.75 / 0.9) / 2)
    # a baseline given as the mean over severities is the same normalisation
    means = {k: sum(v) / 5 for k, v in base.items()}
    assert mce(errors, means) == pytest.approx(mce(errors, base))


def test_alexnet_normalisation():
    assert set(ALEXNET_ERRORS) == set(BENCHMARK)
    assert ALEXNET_ERRORS["gaussian_noise"] == 0.886428 and ALEXNET_ERRORS["jpeg_compression"] == 0.6065
    assert ALEXNET_CLEAN_ERROR == pytest.approx(0.43478)
    alexnet_itself = {k: [v] * 5 for k, v in ALEXNET_ERRORS.items()}
    assert mce(alexnet_itself) == pytest.approx(1.0)  # AlexNet's mCE is 100 % by construction
    assert relative_mce(alexnet_itself, ALEXNET_CLEAN_ERROR) == pytest.approx(1.0)


def test_formula_errors_are_clear():
    with pytest.raises(ValueError, match=r"baseline has no errors for \['snow'\]"):
        mce({"snow": [0.1] * 5}, {"fog": [0.2] * 5})
    with pytest.raises(ValueError, match=r"error rates in \[0, 1\]"):
        mce({"fog": [12.0] * 5}, {"fog": [0.2] * 5})


@pytest.fixture(scope="module")
def mnist():
    from genaug.data.builtin import load_builtin

    test = load_builtin("mnist5k", "test")
    index = torch.arange(0, 1000, 25)  # 40 images, 4 per class
    return test.images[index], test.labels[index]


def test_evaluate_is_batch_size_independent_and_writes_reports(mnist, tmp_path):
    model = ga.load_model("mnist-classifier")
    kwargs = dict(corruptions=["gaussian_noise", "contrast", "glass_blur"], severities=(1, 5), progress=False)
    a = evaluate(model, mnist, batch_size=40, out=tmp_path / "a", model_name="mnist-classifier", **kwargs)
    b = evaluate(model, mnist, batch_size=7, **kwargs)
    assert a.errors == b.errors and a.clean_error == b.clean_error
    assert a.table == "cifar" and a.n == 40 and a.severities == [1, 5]
    assert a.errors["contrast"][0] <= a.errors["contrast"][1]
    for ext in ("json", "csv", "md", "png"):
        assert (tmp_path / "a" / f"robustness.{ext}").stat().st_size > 0
    data = json.loads((tmp_path / "a" / "robustness.json").read_text())
    assert data["errors"] == a.errors and data["accuracies"]["contrast"][0] == pytest.approx(1 - a.errors["contrast"][0])
    csv_lines = (tmp_path / "a" / "robustness.csv").read_text().splitlines()
    assert csv_lines[0] == "corruption,severity,error,accuracy" and len(csv_lines) == 1 + 1 + 3 * 2
    # an earlier results file is a baseline: the same model has CE = 1 (relative CE 1 where defined)
    c = evaluate(model, mnist, baseline=tmp_path / "a" / "robustness.json", **kwargs)
    assert c.mce == pytest.approx(1.0)
    assert "mCE" in (tmp_path / "a" / "robustness.md").read_text() or a.mce is None
    assert RobustnessResult.load(tmp_path / "a" / "robustness.json").errors == a.errors


def test_evaluate_accepts_a_dataset_and_gives_the_generative_shift(mnist):
    data = torch.utils.data.TensorDataset(mnist[0][:16], mnist[1][:16])
    res = evaluate(ga.load_model("mnist-classifier"), data, corruptions="contrast", severities=[3], progress=False,
                   generator=ga.load_model("mnist-cgan"), n_per_class=4)
    assert list(res.errors) == ["contrast"] and len(res.errors["contrast"]) == 1
    assert len(res.generative.per_class) == 10 and 0 <= res.generative.accuracy <= 1


def test_evaluate_errors_are_clear(mnist):
    model = ga.load_model("mnist-classifier")
    with pytest.raises(ValueError, match="unknown corruption"):
        evaluate(model, mnist, corruptions=["gausian_noise"], progress=False)
    with pytest.raises(ValueError, match="severities must be an int in 1..5"):
        evaluate(model, mnist, corruptions=["fog"], severities=[0], progress=False)
    with pytest.raises(TypeError, match="data must be"):
        evaluate(model, [1, 2, 3], corruptions=["fog"], progress=False)


def test_cli(tmp_path, capsys):
    from genaug.cli import main

    rc = main(["robustness", "--model", "mnist-classifier", "--data", "mnist5k:test", "--out", str(tmp_path),
               "--limit", "24", "--corruptions", "contrast", "pixelate", "--severities", "1", "5", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| contrast |" in out and "clean error" in out
    assert (tmp_path / "robustness.png").exists()
    rc = main(["robustness", "--model", "mnist-classifier", "--out", str(tmp_path / "b"), "--limit", "24",
               "--corruptions", "contrast", "pixelate", "--severities", "1", "5", "--baseline",
               str(tmp_path / "robustness.json"), "--no-progress"])
    assert rc == 0 and "mCE: **100.0 %**" in capsys.readouterr().out


def test_docs_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"(<!-- doc-test: skip[^>]*-->\s*)?```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    runnable = [code for skip, code in blocks if not skip]
    assert runnable
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in runnable:
        exec(compile(code, str(DOCS), "exec"), namespace)


def test_benchmark_script_smoke(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(root / "benchmarks" / "corruptions.py"), "--quick", "--sizes", "32",
                          "--corruptions", "contrast", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "| contrast | 32x32 | 8 |" in run.stdout
    assert json.loads(out.read_text())["rows"][0]["corruption"] == "contrast"
