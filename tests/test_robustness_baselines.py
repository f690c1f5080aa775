"""CE against a baseline over the same severities; undefined CE degrades to None; the model's output,
the Dataset's items and the CLI's --limit subset are checked. Toy models on small images: seconds."""

import json
import re
import types
import warnings
from pathlib import Path

import pytest
import torch

from genaug.robustness import ALEXNET_ERRORS, corruption_errors, mce, relative_mce
from genaug.robustness.evaluation import RobustnessResult, evaluate, generative_shift

ROOT = Path(__file__).resolve().parents[1]


def brightness_model(x: torch.Tensor) -> torch.Tensor:
    """Two-class logits: class 1 iff the image is brighter than 0.5 (errors near 50 % on random labels)."""
    m = x.mean(dim=(1, 2, 3))
    return torch.stack([0.5 - m, m - 0.5], dim=1)


@pytest.fixture(scope="module")
def toy():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, 16, 16, generator=g)
    labels = torch.tensor([0, 1] * 8)
    return images, labels


def result(errors, severities, clean=0.1):
    return RobustnessResult(clean_error=clean, errors=errors, severities=list(severities), table="cifar", n=10)


# 1. CE over the same severities ---------------------------------------------------------------------


def test_formulas_refuse_run_and_baseline_lists_of_different_lengths():
    run, base = {"fog": [0.9]}, {"fog": [0.1, 0.2, 0.3, 0.4, 0.9]}
    message = r"errors\['fog'\] has 1 values and baseline_errors\['fog'\] has 5"
    with pytest.raises(ValueError, match=message):  # was 0.9 / mean(1..5) = 2.37
        mce(run, base)
    with pytest.raises(ValueError, match=message):
        corruption_errors(run, base)
    with pytest.raises(ValueError, match=message):
        relative_mce(run, 0.05, base, 0.05)
    # a scalar baseline is the documented mean over the same severities
    assert mce({"fog": [0.2, 0.4]}, {"fog": 0.6}) == pytest.approx(0.5)


def test_with_baseline_uses_the_baselines_errors_at_the_run_severities():
    base = result({"fog": [0.1, 0.2, 0.3, 0.4, 0.9], "snow": [0.2, 0.2, 0.4, 0.4, 0.6]}, [1, 2, 3, 4, 5])
    run = result({"fog": [0.9, 0.1], "snow": [0.6, 0.2]}, [5, 1]).with_baseline(base)
    assert run.ce == pytest.approx({"fog": 1.0, "snow": 1.0})  # the same errors at the same severities
    assert run.mce == pytest.approx(1.0) and run.baseline_severities == [1, 2, 3, 4, 5]
    # relative: (0.5 - 0.1) / (0.5 - 0.1) with the baseline's clean error equal to the run's
    assert run.relative_mce == pytest.approx(1.0)


def test_a_baseline_lacking_a_severity_is_refused_naming_both_lists_before_any_image_is_evaluated(toy):
    base = result({"contrast": [0.3, 0.5]}, [1, 3])
    with pytest.raises(ValueError, match=r"severities \[1, 3\] and this run at \[1, 2\].*no error at \[2\]"):
        result({"contrast": [0.3, 0.4]}, [1, 2]).with_baseline(base)
    calls = []

    def counting(x):
        calls.append(x.shape[0])
        return brightness_model(x)

    with pytest.raises(ValueError, match=r"severities \[1, 3\] and this run at \[1, 2\]"):
        evaluate(counting, toy, corruptions=["contrast"], severities=(1, 2), baseline=base, progress=False)
    assert calls == []  # refused up front, not after the work


def test_a_mean_only_baseline_needs_the_same_severities():
    means = {"errors": {"fog": 0.5}, "severities": [1, 2, 3, 4, 5], "name": "means"}
    with pytest.raises(ValueError, match=r"only the mean over severities \[1, 2, 3, 4, 5\].*evaluated are \[5\]"):
        result({"fog": [0.9]}, [5]).with_baseline(means)
    assert result({"fog": [0.5] * 5}, [5, 4, 3, 2, 1]).with_baseline(means).ce == {"fog": 1.0}
    # a dict baseline without "severities" is at 1..5; its lists must have one error per severity
    with pytest.raises(ValueError, match=r"has 3 errors for 'fog' but its severities are \[1, 2, 3, 4, 5\]"):
        result({"fog": [0.5] * 3}, [1, 2, 3]).with_baseline({"errors": {"fog": [0.5] * 3}})
    with pytest.raises(ValueError, match=r"baseline\['severities'\]"):
        result({"fog": [0.5]}, [1]).with_baseline({"errors": {"fog": [0.5]}, "severities": [7]})


@pytest.mark.filterwarnings("ignore:relative CE is undefined")  # toy errors near 50 %, as its clean error
def test_evaluate_against_itself_at_fewer_severities_gives_ce_1(toy):
    kwargs = dict(corruptions=["contrast", "gaussian_noise"], progress=False)
    full = evaluate(brightness_model, toy, severities=(1, 2, 3, 4, 5), **kwargs)
    assert all(e > 0 for errs in full.errors.values() for e in errs)
    for sevs in [(5,), (1, 3), (4, 2)]:
        part = evaluate(brightness_model, toy, severities=sevs, baseline=full, **kwargs)
        assert part.ce == pytest.approx({"contrast": 1.0, "gaussian_noise": 1.0}), sevs
        assert part.mce == pytest.approx(1.0)


def test_alexnet_default_applies_only_with_all_five_severities(toy, tmp_path):
    kwargs = dict(corruptions=["contrast"], table="imagenet", progress=False)
    with pytest.warns(RuntimeWarning, match=r"AlexNet.*severities \[1, 2, 3, 4, 5\].*evaluated are \[1\]"):
        one = evaluate(brightness_model, toy, severities=(1,), out=tmp_path, **kwargs)
    assert one.ce is None and one.mce is None and one.relative_mce is None  # was E(s=1) / mean AlexNet(1..5)
    assert "[1]" in one.baseline_note
    written = json.loads((tmp_path / "robustness.json").read_text())
    assert written["mce"] is None and "AlexNet" in written["baseline_note"]
    assert f"- note: {one.baseline_note}" in (tmp_path / "robustness.md").read_text()  # says why CE is missing
    with pytest.raises(ValueError, match=r"\[1, 2, 3, 4, 5\].*evaluated are \[1\]"):
        evaluate(brightness_model, toy, severities=(1,), baseline="alexnet", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        five = evaluate(brightness_model, toy, **kwargs)
    assert five.baseline_name == "AlexNet (ImageNet-C)" and five.baseline_note is None
    expected = sum(five.errors["contrast"]) / 5 / ALEXNET_ERRORS["contrast"]
    assert five.ce == pytest.approx({"contrast": expected}) and five.mce == pytest.approx(expected)


# 2. a baseline error of 0: CE undefined for that corruption, the report still written -----------------


def test_zero_baseline_error_leaves_the_corruption_out_and_mce_none():
    base = {"errors": {"fog": [0.0, 0.0], "snow": [0.2, 0.4]}, "severities": [1, 2], "clean_error": 0.0}
    with pytest.warns(RuntimeWarning, match=r"CE is undefined for \['fog'\]"):
        run = result({"fog": [0.3, 0.5], "snow": [0.2, 0.4]}, [1, 2], clean=0.1).with_baseline(base)
    assert run.ce == pytest.approx({"snow": 1.0}) and run.ce.get("fog") is None and run.mce is None
    assert "fog" in run.baseline_note
    # relative CE: fog's baseline error equals its clean error (0): undefined too; snow (0.3 - 0.1) / 0.3
    assert run.relative_ce == pytest.approx({"snow": 2 / 3}) and run.relative_mce is None
    with pytest.raises(ValueError, match=r"baseline_errors\['fog'\] is 0"):  # the formula itself still says so
        mce({"fog": [0.3]}, {"fog": [0.0]})


def test_evaluate_with_a_zero_error_baseline_writes_the_report(toy, tmp_path):
    baseline = {"errors": {"contrast": [0.0], "gaussian_noise": [0.5]}, "severities": [1], "clean_error": 0.5}
    with pytest.warns(RuntimeWarning, match="'contrast'"):
        res = evaluate(brightness_model, toy, corruptions=["contrast", "gaussian_noise"], severities=(1,),
                       baseline=baseline, out=tmp_path, progress=False)
    assert set(res.ce) == {"gaussian_noise"} and res.mce is None
    for ext in ("json", "csv", "md", "png"):
        assert (tmp_path / f"robustness.{ext}").stat().st_size > 0
    assert "| contrast |" in (tmp_path / "robustness.md").read_text()


# 3. the model's output must be (B, K) logits --------------------------------------------------------


@pytest.mark.parametrize("bad, shape", [
    (lambda x: brightness_model(x)[:1], r"\(1, 2\)"),
    (lambda x: brightness_model(x).argmax(1).float(), r"\(16,\)"),
    (lambda x: brightness_model(x)[..., None], r"\(16, 2, 1\)"),
    (lambda x: brightness_model(x).argmax(1, keepdim=True).expand(-1, 2), r"torch.int64 tensor of shape \(16, 2\)"),
])
def test_a_model_not_returning_b_by_k_logits_is_refused(toy, bad, shape):
    with pytest.raises(ValueError, match=r"model must return floating logits of shape \(B, K\) with B = 16.*" + shape):
        evaluate(bad, toy, corruptions=["contrast"], severities=(1,), progress=False)
    with pytest.raises(TypeError, match="model must return a tensor of logits.*got tuple"):
        evaluate(lambda x: (brightness_model(x),), toy, corruptions=["contrast"], severities=(1,), progress=False)


def test_generative_shift_checks_the_model_output():
    class Gen:
        config = types.SimpleNamespace(num_classes=2)

        def sample(self, n, labels=None, generator=None):
            return torch.rand(n, 1, 8, 8, generator=generator)

    assert 0 <= generative_shift(brightness_model, Gen(), n_per_class=3).accuracy <= 1
    with pytest.raises(ValueError, match=r"B = 3 .*shape \(1, 2\)"):
        generative_shift(lambda x: brightness_model(x)[:1], Gen(), n_per_class=3)


# 4. a Dataset's items must be (image, label) pairs ----------------------------------------------------


def test_a_dataset_of_dicts_is_refused_clearly(toy):
    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"image": toy[0][i], "label": int(toy[1][i])}

    with pytest.raises(TypeError, match=r"items must be \(image, label\) pairs.*got items of type dict"):
        evaluate(brightness_model, Dicts(), corruptions=["contrast"], severities=(1,), progress=False)
    triples = torch.utils.data.TensorDataset(toy[0][:4], toy[1][:4], toy[1][:4])
    with pytest.raises(TypeError, match=r"items must be \(image, label\) pairs.*tuple of 3 elements"):
        evaluate(brightness_model, triples, corruptions=["contrast"], severities=(1,), progress=False)
    pairs = torch.utils.data.TensorDataset(toy[0][:4], toy[1][:4])
    assert evaluate(brightness_model, pairs, corruptions=["contrast"], severities=(1,), progress=False).n == 4


# 5. seeded random subsets, not the first N of a class-sorted set ---------------------------------------


def test_cli_limit_takes_a_seeded_random_subset(monkeypatch, capsys):
    import genaug.robustness.evaluation as evaluation
    from genaug.cli import main
    from genaug.data.builtin import load_builtin

    seen = []

    def fake_evaluate(model, data, **kwargs):
        seen.append((data, kwargs["seed"]))
        raise ValueError("stop here")

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    test = load_builtin("mnist5k", "test")
    for seed in (0, 1):
        rc = main(["robustness", "--model", "mnist-classifier", "--out", "unused", "--limit", "30", "--seed",
                   str(seed), "--no-progress"])
        assert rc == 2 and "stop here" in capsys.readouterr().err
    (images0, labels0), _ = seen[0]
    index = torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(0))[:30]
    assert torch.equal(labels0, test.labels[index]) and torch.equal(images0, test.images[index])
    assert len(labels0.unique()) >= 5  # the first 30 of the sorted set are all 0
    assert not torch.equal(seen[1][0][1], labels0)  # --seed draws it
    assert main(["robustness", "--model", "mnist-classifier", "--out", "unused", "--limit", "0"]) == 2
    assert "--limit must be a positive number of images, got 0" in capsys.readouterr().err


def test_cli_help_documents_the_limit_subset(capsys):
    from genaug.cli import main

    with pytest.raises(SystemExit):
        main(["robustness", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "random subset of N images, drawn with --seed" in text


def test_examples_do_not_take_the_first_images_of_a_class_sorted_set():
    readme = ROOT.joinpath("README.md").read_text()
    section = readme.split("## Robustness benchmarking", 1)[1].split("\n## ", 1)[0]
    for name, text in (("README", section), ("docs/ROBUSTNESS.md", ROOT.joinpath("docs", "ROBUSTNESS.md").read_text())):
        assert not re.search(r"test\.(images|labels)\[:\d+\]", text), name
        assert "torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(0))" in text, name
