"""The README's usage example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}  # later examples build on earlier ones, as in a reader's session
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "aug.yaml").exists()


def test_readme_argument_claims_match_the_signatures():
    """The README's sentence on which ops take p/same_on_batch/seed and the warp options stays true."""
    import inspect

    import genaug as ga

    def takes(cls):
        return set(inspect.signature(cls.__init__).parameters)

    random_ops = [ga.RandomCrop, ga.RandomResizedCrop, ga.RandomRotation, ga.RandomScale, ga.RandomAffine,
                  ga.RandomHorizontalFlip, ga.RandomVerticalFlip, ga.ColorJitter, ga.RandomBrightness,
                  ga.RandomContrast, ga.RandomSaturation, ga.RandomHue, ga.RandomGaussianBlur,
                  ga.RandomBilateralBlur, ga.RandomGaussianNoise]
    for cls in random_ops:
        assert {"p", "same_on_batch", "seed"} <= takes(cls), cls.__name__
    for cls in (ga.Resize, ga.CenterCrop, ga.Normalize):
        assert not {"p", "same_on_batch", "seed"} & takes(cls), cls.__name__
    warp = {"interpolation", "padding_mode", "fill", "antialias"}
    claims = {ga.RandomRotation: warp, ga.RandomScale: warp, ga.RandomAffine: warp,
              ga.RandomResizedCrop: {"interpolation", "antialias"}, ga.Resize: {"interpolation", "antialias"},
              ga.RandomCrop: {"padding_mode", "fill"}, ga.CenterCrop: {"fill"},
              ga.RandomHorizontalFlip: set(), ga.RandomVerticalFlip: set()}
    for cls, options in claims.items():
        assert takes(cls) & warp == options, cls.__name__
    text = README.read_text()
    assert "the deterministic\nones (`Resize`, `CenterCrop`, `Normalize`) take none of them" in text
