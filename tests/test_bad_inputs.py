"""A catalogue of bad inputs and arguments across the public API.

Each case is a call that must fail with one exception type and a message that names the
culprit (the argument, input or name at fault), so that a user can act on it.
``test_catalogue_rejects_wrong_type_or_unnamed_messages`` checks that the catalogue's own check
would catch an error of the wrong type or a message that does not name the culprit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import genaug as ga

NAN, INF = float("nan"), float("inf")
X = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
ROT = ga.RandomRotation(3, seed=0)
TWO = [ga.RandomRotation(3), ga.RandomHorizontalFlip()]


def _replay_params_for_another_batch(tmp: Path) -> Any:
    _, params = ROT(X, return_params=True)
    return ROT(torch.rand(3, 3, 8, 8), params=params)


def _load_pipeline_with_bad_suffix(tmp: Path) -> Any:
    path = tmp / "aug.txt"
    path.write_text('{"name": "RandomRotation", "args": {"degrees": 3}}')
    return ga.load_pipeline(path)


def _save_pipeline_with_bad_suffix(tmp: Path) -> Any:
    return ga.save_pipeline(ROT, tmp / "aug.pkl")


def c(build: Callable[[], Any], error: type[BaseException], name: str, id: str) -> Any:
    """A case that needs no temporary directory."""
    return pytest.param(lambda tmp: build(), error, name, id=id)


CASES = [
    # ---------------------------------------------------------------- constructors: numbers
    c(lambda: ga.RandomRotation(degrees=NAN), ValueError, "degrees", "rotation-degrees-nan"),
    c(lambda: ga.RandomRotation(degrees=(0, INF)), ValueError, "degrees", "rotation-degrees-inf-end"),
    c(lambda: ga.RandomRotation(degrees=(-1e308, 1e308)), ValueError, "degrees", "rotation-degrees-infinite-width"),
    c(lambda: ga.RandomRotation(degrees=True), TypeError, "degrees", "rotation-degrees-bool"),
    c(lambda: ga.RandomRotation(30, p=NAN), ValueError, "p must", "rotation-p-nan"),
    c(lambda: ga.RandomHorizontalFlip(p=-0.1), ValueError, "p must", "hflip-p-negative"),
    c(lambda: ga.RandomVerticalFlip(p=True), TypeError, "p must", "vflip-p-bool"),
    c(lambda: ga.RandomScale(scale=(0.5, INF)), ValueError, "scale", "scale-inf"),
    c(lambda: ga.RandomScale(scale=(0.0, 1.0)), ValueError, "scale", "scale-zero"),
    c(lambda: ga.RandomAffine(0, translate=(True, 0.1)), TypeError, "translate", "affine-translate-bool"),
    c(lambda: ga.RandomAffine(0, translate=(NAN, 0.1)), ValueError, "translate", "affine-translate-nan"),
    c(lambda: ga.RandomAffine(0, translate=0.1), TypeError, "translate", "affine-translate-scalar"),
    c(lambda: ga.RandomAffine(0, scale=(-1, 1)), ValueError, "scale", "affine-scale-negative"),
    c(lambda: ga.RandomAffine(0, shear=(1, 2, 3)), TypeError, "shear", "affine-shear-3-values"),
    c(lambda: ga.RandomAffine(0, shear=(0, 0, -90, 0)), ValueError, "shear", "affine-shear-y-90"),
    c(lambda: ga.RandomAffine(0, shear=NAN), ValueError, "shear", "affine-shear-nan"),
    c(lambda: ga.RandomResizedCrop(8, scale=(0, 0)), ValueError, "scale", "rrc-scale-no-area"),
    c(lambda: ga.RandomResizedCrop(8, ratio=(NAN, 1)), ValueError, "ratio", "rrc-ratio-nan"),
    c(lambda: ga.RandomCrop(size=10**9), ValueError, "size", "crop-size-huge"),
    c(lambda: ga.RandomCrop(size=(8, True)), TypeError, "size", "crop-size-bool"),
    c(lambda: ga.RandomCrop(8, padding=(1, 2, 3)), TypeError, "padding", "crop-padding-3-values"),
    c(lambda: ga.RandomCrop(8, padding=1.5), TypeError, "padding", "crop-padding-float"),
    c(lambda: ga.RandomCrop(8, padding=(1, -2)), ValueError, "padding", "crop-padding-negative"),
    c(lambda: ga.RandomCrop(8, pad_if_needed="no"), TypeError, "pad_if_needed", "crop-pad-if-needed-str"),
    c(lambda: ga.Resize(size=-3), ValueError, "size", "resize-size-negative"),
    c(lambda: ga.Resize(size=16.0), TypeError, "size", "resize-size-float"),
    c(lambda: ga.ColorJitter(brightness=(-0.5, 1.5)), ValueError, "brightness", "jitter-brightness-negative-min"),
    c(lambda: ga.ColorJitter(contrast=INF), ValueError, "contrast", "jitter-contrast-inf"),
    c(lambda: ga.ColorJitter(saturation="0.4"), TypeError, "saturation", "jitter-saturation-str"),
    c(lambda: ga.ColorJitter(hue=(-0.6, 0.1)), ValueError, "hue", "jitter-hue-out-of-range"),
    c(lambda: ga.RandomHue(hue=NAN), ValueError, "hue", "hue-nan"),
    c(lambda: ga.RandomBrightness(brightness=True), TypeError, "brightness", "brightness-bool"),
    c(lambda: ga.RandomContrast(contrast=(0.5,)), TypeError, "contrast", "contrast-one-value-tuple"),
    c(lambda: ga.RandomSaturation(saturation=-1), ValueError, "saturation", "saturation-negative"),
    c(lambda: ga.RandomGaussianBlur(kernel_size=True), TypeError, "kernel_size", "blur-kernel-bool"),
    c(lambda: ga.RandomGaussianBlur(kernel_size=(3, 4)), ValueError, "kernel_size", "blur-kernel-even"),
    c(lambda: ga.RandomGaussianBlur(kernel_size=2**31 + 1), ValueError, "kernel_size", "blur-kernel-huge"),
    c(lambda: ga.RandomGaussianBlur(3, sigma=(NAN, 1)), ValueError, "sigma", "blur-sigma-nan"),
    c(lambda: ga.RandomBilateralBlur(5, sigma_color=0), ValueError, "sigma_color", "bilateral-sigma-color-zero"),
    c(lambda: ga.RandomBilateralBlur(5, sigma_space=(1, -INF)), ValueError, "sigma_space", "bilateral-sigma-space-inf"),
    c(lambda: ga.RandomGaussianNoise(mean=NAN), ValueError, "mean", "noise-mean-nan"),
    c(lambda: ga.RandomGaussianNoise(mean="0"), TypeError, "mean", "noise-mean-str"),
    c(lambda: ga.RandomGaussianNoise(std=INF), ValueError, "std", "noise-std-inf"),
    c(lambda: ga.RandomGaussianNoise(clip="yes"), TypeError, "clip", "noise-clip-str"),
    c(lambda: ga.Normalize("0.5", [0.5]), TypeError, "mean", "normalize-mean-str"),
    c(lambda: ga.Normalize(0.5, 0.5), TypeError, "mean", "normalize-mean-number"),
    c(lambda: ga.Normalize([NAN], [0.5]), ValueError, "mean", "normalize-mean-nan"),
    c(lambda: ga.Normalize([0.5], [INF]), ValueError, "std", "normalize-std-inf"),
    c(lambda: ga.Normalize([0.5], [-1]), ValueError, "std", "normalize-std-negative"),
    c(lambda: ga.Normalize([], []), ValueError, "mean", "normalize-empty"),
    c(lambda: ga.Normalize([0.5, 0.5], [0.5]), ValueError, "std", "normalize-lengths-differ"),
    # ---------------------------------------------------------------- constructors: fill, options, seeds
    c(lambda: ga.RandomRotation(30, fill=1.5), ValueError, "fill", "fill-above-1"),
    c(lambda: ga.CenterCrop(8, fill=-0.1), ValueError, "fill", "fill-negative"),
    c(lambda: ga.RandomCrop(8, fill=(0.5, NAN)), ValueError, "fill", "fill-nan-channel"),
    c(lambda: ga.RandomRotation(30, fill=[]), ValueError, "fill", "fill-empty"),
    c(lambda: ga.RandomRotation(30, fill="black"), TypeError, "fill", "fill-str"),
    c(lambda: ga.RandomRotation(30, interpolation=3), TypeError, "interpolation", "interpolation-int"),
    c(lambda: ga.Resize(16, interpolation="area"), ValueError, "interpolation", "interpolation-unknown"),
    c(lambda: ga.RandomRotation(30, padding_mode="zeros"), ValueError, "padding_mode", "padding-mode-unknown"),
    c(lambda: ga.RandomRotation(30, antialias=1), TypeError, "antialias", "antialias-int"),
    c(lambda: ga.RandomRotation(30, same_on_batch="yes"), TypeError, "same_on_batch", "same-on-batch-str"),
    c(lambda: ga.RandomRotation(30, seed=True), TypeError, "seed", "seed-bool"),
    c(lambda: ga.RandomRotation(30, seed=1.5), TypeError, "seed", "seed-float"),
    c(lambda: ga.RandomRotation(30, seed=2**64), ValueError, "seed", "seed-too-large-for-a-generator"),
    c(lambda: ga.RandomRotation(30, degree=3), TypeError, "degree", "unknown-keyword"),
    c(lambda: ga.ColorJitter(0.1, 0.1, 0.1, 0.1, "yiq", 1.0, False, 0, "extra"), TypeError, "ColorJitter", "too-many-positional"),
    # ---------------------------------------------------------------- containers
    c(lambda: ga.Compose(ga.RandomRotation(3)), TypeError, "transforms", "compose-not-a-list"),
    c(lambda: ga.Compose([3]), TypeError, "transforms[0]", "compose-non-callable"),
    c(lambda: ga.Compose(TWO, fill=2.0), ValueError, "fill", "compose-fill-override"),
    c(lambda: ga.Compose(TWO, sed=1), TypeError, "sed", "compose-unknown-keyword"),
    c(lambda: ga.RandomApply(TWO, p=2), ValueError, "p must", "random-apply-p"),
    c(lambda: ga.OneOf(TWO, weights=[NAN, 1.0]), ValueError, "weights", "oneof-weights-nan"),
    c(lambda: ga.OneOf(TWO, weights=[-1.0, 2.0]), ValueError, "weights", "oneof-weights-negative"),
    c(lambda: ga.OneOf(TWO, weights=[1.0]), ValueError, "weights", "oneof-weights-wrong-length"),
    c(lambda: ga.OneOf(TWO, weights=[0.0, 0.0]), ValueError, "weights", "oneof-weights-zero-sum"),
    c(lambda: ga.OneOf(TWO, weights=[10**400, 1.0]), ValueError, "weights", "oneof-weights-int-too-large-for-float"),
    c(lambda: ga.SomeOf(TWO, n=3), ValueError, "n must", "someof-n-too-large"),
    c(lambda: ga.SomeOf(TWO, n=(2, 1)), ValueError, "n must", "someof-n-min-above-max"),
    c(lambda: ga.SomeOf(TWO, n=True), TypeError, "n must", "someof-n-bool"),
    # ---------------------------------------------------------------- calls: image
    c(lambda: ROT([[0.0]]), TypeError, "image", "image-list"),
    c(lambda: ROT(np.zeros((3, 8, 8), np.float32)), TypeError, "image", "image-numpy"),
    c(lambda: ROT(torch.rand(8, 8)), ValueError, "image", "image-rank-2"),
    c(lambda: ROT(torch.rand(1, 2, 3, 8, 8)), ValueError, "image", "image-rank-5"),
    c(lambda: ROT(torch.zeros(1, 3, 8, 8, dtype=torch.int32)), TypeError, "image dtype", "image-int32"),
    c(lambda: ROT(torch.zeros(1, 3, 8, 8, dtype=torch.bool)), TypeError, "image dtype", "image-bool"),
    c(lambda: ROT(torch.full((1, 3, 8, 8), NAN)), ValueError, "image", "image-nan"),
    c(lambda: ROT(torch.full((1, 3, 8, 8), INF, dtype=torch.float16)), ValueError, "image", "image-inf-half"),
    c(lambda: ROT(torch.rand(1, 0, 8, 8)), ValueError, "image", "image-no-channels"),
    c(lambda: ga.ColorJitter(0.2)(torch.rand(1, 4, 8, 8)), ValueError, "channels", "jitter-4-channels"),
    c(lambda: ga.RandomGaussianBlur(9)(torch.rand(1, 3, 4, 4)), ValueError, "kernel_size", "blur-kernel-larger-than-image"),
    c(lambda: ga.RandomCrop(16)(torch.rand(1, 3, 8, 8)), ValueError, "pad_if_needed", "crop-larger-than-image"),
    c(lambda: ga.Normalize([0.5] * 2, [0.5] * 2)(X), ValueError, "mean/std", "normalize-channel-count"),
    c(lambda: ga.RandomRotation((30, 30), fill=(0.5, 0.5))(X), ValueError, "fill", "fill-channel-count"),
    # ---------------------------------------------------------------- calls: targets
    c(lambda: ROT(X, masks=[[0]]), TypeError, "masks", "masks-list"),
    c(lambda: ROT(X, masks=torch.zeros(2, 8, 9)), ValueError, "masks", "masks-spatial-size"),
    c(lambda: ROT(X, masks=torch.zeros(3, 8, 8)), ValueError, "masks", "masks-batch-size"),
    c(lambda: ROT(X, masks=torch.zeros(2, 1, 1, 8, 8)), ValueError, "masks", "masks-rank-5"),
    c(lambda: ROT(X, boxes=torch.zeros(2, 3)), ValueError, "boxes", "boxes-rank-2"),
    c(lambda: ROT(X, boxes=torch.zeros(2, 3, 5)), ValueError, "boxes", "boxes-5-coordinates"),
    c(lambda: ROT(X, boxes=torch.zeros(1, 3, 4)), ValueError, "boxes", "boxes-batch-size"),
    c(lambda: ROT(X, boxes=np.zeros((2, 3, 4))), TypeError, "boxes", "boxes-numpy"),
    c(lambda: ROT(X, keypoints=torch.zeros(2, 3, 3)), ValueError, "keypoints", "keypoints-3-coordinates"),
    c(lambda: ROT(X, keypoints=torch.zeros(1, 3, 2)), ValueError, "keypoints", "keypoints-batch-size"),
    c(lambda: ROT(X, labels=torch.zeros(3)), ValueError, "labels", "labels-size"),
    c(lambda: ROT(X, labels=[0, 1]), TypeError, "labels", "labels-list"),
    # ---------------------------------------------------------------- calls: replay params
    c(lambda: ROT(X, params=[torch.zeros(2)]), TypeError, "params", "params-list"),
    c(lambda: ROT(X, params={"angle": torch.zeros(2)}), TypeError, "params", "params-without-apply"),
    pytest.param(_replay_params_for_another_batch, ValueError, "params", id="params-for-another-batch-size"),
    # ---------------------------------------------------------------- serialization and models
    c(lambda: ga.from_dict({"name": "NoSuchTransform", "args": {}}), ValueError, "NoSuchTransform", "from-dict-unknown-name"),
    c(lambda: ga.from_dict({"name": "RandomRotation"}), ValueError, "args", "from-dict-no-args"),
    c(lambda: ga.from_dict("RandomRotation"), ValueError, "config", "from-dict-not-a-dict"),
    c(lambda: ga.from_dict({"name": "RandomRotation", "args": {"degrees": 3, "bogus": 1}}), TypeError, "bogus",
      "from-dict-unknown-argument"),
    c(lambda: ga.from_dict({"name": "RandomRotation", "args": {"degrees": NAN}}), ValueError, "degrees",
      "from-dict-nan-argument"),
    pytest.param(_load_pipeline_with_bad_suffix, ValueError, "path", id="load-pipeline-bad-suffix"),
    pytest.param(_save_pipeline_with_bad_suffix, ValueError, "path", id="save-pipeline-bad-suffix"),
    c(lambda: ga.load_model("no-such-model"), FileNotFoundError, "no-such-model", "load-model-unknown-name"),
]


def check_case(build: Callable[[Path], Any], error: type[BaseException], name: str, tmp: Path) -> None:
    """``build`` raises ``error`` (or a subclass) and its message contains ``name``."""
    with pytest.raises(error) as info:
        build(tmp)
    message = str(info.value)
    assert name in message, f"the {error.__name__} does not name {name!r}: {message}"


@pytest.mark.parametrize("build,error,name", CASES)
def test_bad_input_fails_with_a_message_naming_the_culprit(build, error, name, tmp_path):
    check_case(build, error, name, tmp_path)


def test_catalogue_is_large_and_cases_are_distinct():
    ids = [case.id for case in CASES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("build,error,name", CASES)
def test_catalogue_rejects_wrong_type_or_unnamed_messages(build, error, name, tmp_path):
    """The check above fails on a stub raising another type, or the right type without the name."""
    other = TypeError if not issubclass(TypeError, error) else RuntimeError

    def wrong_type(tmp: Path) -> None:
        raise other(f"bad {name}")

    def unnamed(tmp: Path) -> None:
        raise error("invalid argument")  # type: ignore[call-arg]

    assert name and name not in "invalid argument"
    with pytest.raises(other):
        check_case(wrong_type, error, name, tmp_path)
    with pytest.raises(AssertionError):
        check_case(unnamed, error, name, tmp_path)
