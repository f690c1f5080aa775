"""to_dict / from_dict and JSON / YAML files reproduce pipelines bitwise."""

import json

import pytest
import torch

import genaug as ga

from .test_properties import full_pipeline


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_saved_pipeline_reproduces_outputs_bitwise(tmp_path, suffix):
    aug = ga.Compose(
        [full_pipeline(12, 3, 0.7), ga.OneOf([ga.RandomRotation(20), ga.RandomScale()]), ga.SomeOf(
            [ga.RandomBrightness(0.3), ga.RandomHue(0.1, hue_mode="hsv")], n=(0, 2)), ga.RandomApply([ga.RandomBilateralBlur()]),
         ga.Normalize([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])],
        seed=11,
    )
    path = ga.save_pipeline(aug, tmp_path / f"pipe{suffix}")
    loaded = ga.load_pipeline(path)
    assert loaded.to_dict() == aug.to_dict()
    x = torch.rand(5, 3, 20, 20)
    assert torch.equal(loaded(x), aug(x))
    assert torch.equal(ga.from_dict(aug.to_dict())(x), ga.from_dict(json.loads(json.dumps(aug.to_dict())))(x))


def test_to_dict_is_plain_json():
    cfg = ga.RandomAffine(10, translate=(0.1, 0.2), fill=(0.5, 0.5, 0.5), seed=1).to_dict()
    assert cfg == json.loads(json.dumps(cfg))
    assert cfg["name"] == "RandomAffine" and cfg["args"]["translate"] == [0.1, 0.2] and cfg["args"]["seed"] == 1


def test_unknown_and_malformed_configs_are_rejected():
    with pytest.raises(ValueError, match="unknown transform 'Nope'"):
        ga.from_dict({"name": "Nope", "args": {}})
    with pytest.raises(ValueError, match="'name' and 'args'"):
        ga.from_dict({"transforms": []})
    with pytest.raises(TypeError, match="unexpected keyword argument 'degree'"):
        ga.from_dict({"name": "RandomRotation", "args": {"degree": 3}})


def test_third_party_modules_cannot_be_saved(tmp_path):
    aug = ga.Compose([ga.RandomRotation(10), torch.nn.Identity()])
    assert aug(torch.rand(2, 3, 8, 8)).shape == (2, 3, 8, 8)
    with pytest.raises(TypeError, match="cannot serialize"):
        aug.to_dict()
    with pytest.raises(ValueError, match=r"\.json, \.yaml or \.yml"):
        ga.save_pipeline(ga.RandomRotation(10), tmp_path / "pipe.pkl")
