"""Every numeric constructor argument of every public transform is checked at construction.

A table lists, for each public transform, each numeric argument with a valid value, its
sequence form (``(min, max)``, a per-channel fill, ...) and the values that are out of its
range. Hypothesis draws a transform, an argument and a bad value (NaN, +-inf, out of range, a
bool, a string, an int too large for a float) and puts it in the scalar or at either end of the
sequence: construction must raise ``ValueError`` or ``TypeError`` naming the argument and the
value. The table checks itself against ``inspect.signature``: a new numeric argument without a
row fails ``test_table_covers_every_numeric_argument``.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import genaug as ga
from genaug.transforms.base import MAX_EXTENT, Transform

NAN, INF = float("nan"), float("inf")
#: Bad in any numeric argument: not finite, not a number, or an int no float can hold.
SPECIAL = (NAN, INF, -INF, True, False, "abc", 10**400)


def floats_outside(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> st.SearchStrategy:
    """Finite floats (and small ints) outside ``[low, high]`` (an open end counts as outside)."""

    def inside(v: float) -> bool:
        above = v > low or (v == low and not low_open)
        below = v < high or (v == high and not high_open)
        return above and below

    values = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000)
    edges = [v for v in (low, high) if abs(v) != INF]
    return (values | st.sampled_from(edges or [0.0])).filter(lambda v: not inside(v))


def ints_outside(low: int, high: int) -> st.SearchStrategy:
    return st.integers(max_value=low - 1) | st.integers(min_value=high + 1)


ODD_OK = st.integers(1, MAX_EXTENT).filter(lambda v: v % 2 == 1)
BAD_KERNEL = ints_outside(1, MAX_EXTENT) | st.integers(-50, 50).filter(lambda v: v % 2 == 0)


@dataclass(frozen=True)
class Arg:
    """One numeric argument: a valid scalar, a valid sequence form, and what is out of range.

    ``scalar_bad`` / ``sequence_bad``: values out of range as the scalar / at either end of
    ``sequence`` (``None``: no such value, e.g. a rotation range has no bounds). NaN, infinities,
    bools and strings are tried everywhere in addition.
    """

    valid: Any
    sequence: tuple | list | None = None
    scalar_bad: st.SearchStrategy | None = None
    sequence_bad: st.SearchStrategy | None = None
    special: tuple = SPECIAL

    def placements(self) -> list[str]:
        return ["scalar"] + (["first", "last"] if self.sequence is not None else [])

    def bad_values(self, placement: str) -> st.SearchStrategy:
        extra = self.scalar_bad if placement == "scalar" else self.sequence_bad
        special = st.sampled_from(self.special)
        return special if extra is None else special | extra

    def place(self, bad: Any, placement: str) -> Any:
        if placement == "scalar":
            return bad
        assert self.sequence is not None
        values = list(self.sequence)
        values[0 if placement == "first" else -1] = bad
        return type(self.sequence)(values)


def P() -> Arg:
    return Arg(0.5, scalar_bad=floats_outside(0.0, 1.0))


def SEED() -> Arg:
    # Out-of-range seeds (beyond what torch.Generator takes) are in tests/test_bad_inputs.py.
    return Arg(0, special=(NAN, INF, -INF, True, False, "abc", 1.5))


def FILL() -> Arg:
    return Arg(0.5, (0.1, 0.2, 0.3), floats_outside(0.0, 1.0), floats_outside(0.0, 1.0))


def SIZE() -> Arg:
    return Arg(8, (8, 6), ints_outside(1, MAX_EXTENT), ints_outside(1, MAX_EXTENT))


def ANGLE_RANGE() -> Arg:
    """``d`` means ``(-d, d)`` (so ``d < 0`` is out of range); a ``(min, max)`` pair has no bounds."""
    return Arg(10.0, (-10.0, 10.0), floats_outside(0.0, INF))


def FACTOR() -> Arg:
    """brightness / contrast / saturation: ``d >= 0`` or a ``(min, max)`` pair within [0, inf)."""
    return Arg(0.4, (0.5, 1.5), floats_outside(0.0, INF), floats_outside(0.0, INF))


def HUE() -> Arg:
    return Arg(0.1, (-0.1, 0.1), floats_outside(0.0, 0.5), floats_outside(-0.5, 0.5))


def POSITIVE_RANGE(low: float = 1e-6) -> Arg:
    """A positive range such as a scale or a sigma: a number or ``(min, max)``, both >= low."""
    return Arg(1.0, (0.8, 1.2), floats_outside(low, INF), floats_outside(low, INF))


GEOMETRIC_COMMON = {"p": P(), "fill": FILL(), "seed": SEED()}
COLOR_COMMON = {"p": P(), "seed": SEED()}

#: transform class -> (required arguments, {numeric argument: Arg})
TABLE: dict[type, tuple[dict[str, Any], dict[str, Arg]]] = {
    ga.Transform: ({}, {"p": P(), "seed": SEED()}),
    ga.GeometricTransform: ({}, dict(GEOMETRIC_COMMON)),
    ga.RandomHorizontalFlip: ({}, {"p": P(), "seed": SEED()}),
    ga.RandomVerticalFlip: ({}, {"p": P(), "seed": SEED()}),
    ga.RandomRotation: ({"degrees": 10}, {"degrees": ANGLE_RANGE(), **GEOMETRIC_COMMON}),
    ga.RandomScale: ({}, {"scale": POSITIVE_RANGE(), **GEOMETRIC_COMMON}),
    ga.RandomAffine: (
        {"degrees": 10},
        {
            "degrees": ANGLE_RANGE(),
            # (a, b) fractions of the size: a pair only, each in [0, 1]
            "translate": Arg((0.1, 0.2), (0.1, 0.2), None, floats_outside(0.0, 1.0)),
            "scale": POSITIVE_RANGE(),
            # d (means (-d, d)), (min, max) or (xmin, xmax, ymin, ymax), all strictly within (-90, 90)
            "shear": Arg(
                10.0,
                (-5.0, 5.0, -3.0, 3.0),
                floats_outside(0.0, 90.0, high_open=True),
                floats_outside(-90.0, 90.0, low_open=True, high_open=True),
            ),
            **GEOMETRIC_COMMON,
        },
    ),
    ga.Resize: ({"size": 8}, {"size": SIZE()}),
    ga.CenterCrop: ({"size": 8}, {"size": SIZE(), "fill": FILL()}),
    ga.RandomCrop: (
        {"size": 8},
        {
            "size": SIZE(),
            "padding": Arg(2, (1, 2, 3, 4), ints_outside(0, MAX_EXTENT), ints_outside(0, MAX_EXTENT)),
            **GEOMETRIC_COMMON,
        },
    ),
    ga.RandomResizedCrop: (
        {"size": 8},
        {
            "size": SIZE(),
            # a number s means (s, s); the area fraction must be >= 0 with a positive maximum
            "scale": Arg((0.5, 1.0), (0.5, 1.0), floats_outside(0.0, INF, low_open=True), floats_outside(0.0, INF)),
            "ratio": Arg((0.75, 1.33), (0.75, 1.33), floats_outside(1e-6, INF), floats_outside(1e-6, INF)),
            "p": P(),
            "seed": SEED(),
        },
    ),
    ga.ColorJitter: (
        {},
        {"brightness": FACTOR(), "contrast": FACTOR(), "saturation": FACTOR(), "hue": HUE(), **COLOR_COMMON},
    ),
    ga.RandomBrightness: ({}, {"brightness": FACTOR(), **COLOR_COMMON}),
    ga.RandomContrast: ({}, {"contrast": FACTOR(), **COLOR_COMMON}),
    ga.RandomSaturation: ({}, {"saturation": FACTOR(), **COLOR_COMMON}),
    ga.RandomHue: ({}, {"hue": HUE(), **COLOR_COMMON}),
    ga.RandomGaussianBlur: (
        {"kernel_size": 3},
        {"kernel_size": Arg(3, (3, 5), BAD_KERNEL, BAD_KERNEL), "sigma": POSITIVE_RANGE(), **COLOR_COMMON},
    ),
    ga.RandomBilateralBlur: (
        {},
        {
            "kernel_size": Arg(3, (3, 5), BAD_KERNEL, BAD_KERNEL),
            "sigma_color": POSITIVE_RANGE(),
            "sigma_space": POSITIVE_RANGE(),
            **COLOR_COMMON,
        },
    ),
    ga.RandomGaussianNoise: (
        {},
        {
            "mean": Arg(0.0, None, floats_outside(-1.0, 1.0)),
            "std": Arg(0.1, (0.01, 0.1), floats_outside(0.0, 1.0), floats_outside(0.0, 1.0)),
            **COLOR_COMMON,
        },
    ),
    ga.Normalize: (
        {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]},
        {
            # sequences only: a scalar of any kind is a TypeError
            "mean": Arg([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], None, None),
            "std": Arg([0.2, 0.2, 0.2], [0.2, 0.2, 0.2], None, floats_outside(0.0, INF, low_open=True)),
        },
    ),
    ga.GenerativeSample: ({"model": "mnist-cgan"}, {"p": P(), "seed": SEED(),
        "truncation": Arg(1.0, scalar_bad=floats_outside(0.0, INF, low_open=True))}),
    ga.LatentNoise: ({"model": "mnist-cvae"}, {"p": P(), "seed": SEED(),
        "sigma": Arg(0.5, (0.2, 0.8), floats_outside(0.0, INF), floats_outside(0.0, INF))}),
    ga.LatentInterpolate: ({"model": "mnist-cvae"}, {"p": P(), "seed": SEED(),
        "alpha": Arg(0.5, (0.2, 0.8), floats_outside(0.0, 1.0), floats_outside(0.0, 1.0))}),
    ga.Corruption: ({"name": "fog", "severity": 3}, {"severity": Arg(3, None, ints_outside(1, 5)), **COLOR_COMMON}),
    ga.RandomCorruption: ({}, {"severity": Arg(3, (1, 5), ints_outside(1, 5), ints_outside(1, 5)), **COLOR_COMMON}),
}

_CHILDREN = [ga.RandomRotation(3), ga.RandomHorizontalFlip()]
#: Containers (compose.py); their arguments besides the children.
CONTAINERS: dict[type, tuple[dict[str, Any], dict[str, Arg]]] = {
    ga.Compose: ({"transforms": _CHILDREN}, {"p": P(), "seed": SEED(), "fill": FILL()}),
    ga.RandomApply: ({"transforms": _CHILDREN}, {"p": P(), "seed": SEED()}),
    ga.OneOf: (
        {"transforms": _CHILDREN},
        {"weights": Arg([1.0, 2.0], [1.0, 2.0], None, floats_outside(0.0, INF)), "p": P(), "seed": SEED()},
    ),
    ga.SomeOf: ({"transforms": _CHILDREN}, {"n": Arg(1, (1, 2), ints_outside(0, 2), ints_outside(0, 2)), "p": P(), "seed": SEED()}),
    ga.ModuleStage: ({"module": torch.nn.Identity()}, {}),
}

#: Constructor arguments that are not numbers (flags, names, children): not in the tables.
NON_NUMERIC = {
    "self", "same_on_batch", "antialias", "interpolation", "padding_mode", "hue_mode", "pad_if_needed", "clip",
    "transforms", "module",
}
_NUMERIC_ANNOTATION = re.compile(r"\b(int|float)\b")


def public_transforms() -> list[type]:
    return sorted(
        {getattr(ga, n) for n in ga.__all__ if isinstance(getattr(ga, n), type) and issubclass(getattr(ga, n), Transform)},
        key=lambda c: c.__name__,
    )


def numeric_parameters(cls: type) -> set[str]:
    out = set()
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise AssertionError(f"{cls.__name__}.__init__ takes *{name}: list its arguments explicitly")
        annotation = param.annotation if isinstance(param.annotation, str) else getattr(param.annotation, "__name__", "")
        if param.annotation is inspect.Parameter.empty or _NUMERIC_ANNOTATION.search(str(annotation)):
            if name not in NON_NUMERIC:
                out.add(name)
    return out


def test_table_covers_every_numeric_argument():
    tables = {**TABLE, **CONTAINERS}
    missing_classes = [c.__name__ for c in public_transforms() if c not in tables]
    assert not missing_classes, f"public transforms without a row in the argument table: {missing_classes}"
    for cls, (_, args) in tables.items():
        numeric = numeric_parameters(cls)
        assert set(args) == numeric, (
            f"{cls.__name__}: numeric constructor arguments {sorted(numeric)} but the table covers {sorted(args)}"
        )


@pytest.mark.parametrize("cls", list(TABLE) + list(CONTAINERS), ids=lambda c: c.__name__)
def test_table_values_are_valid(cls):
    """The table's valid values construct (so a failure below comes from the bad value alone)."""
    required, args = {**TABLE, **CONTAINERS}[cls]
    cls(**required)
    for name, arg in args.items():
        cls(**{**required, name: arg.valid})
        if arg.sequence is not None:
            cls(**{**required, name: arg.sequence})


def _shows(value: Any, message: str) -> bool:
    return repr(value) in message or str(value) in message


def _check_bad_argument(data: Any, table: dict[type, tuple[dict[str, Any], dict[str, Arg]]]) -> None:
    classes = [c for c in table if table[c][1]]
    cls = data.draw(st.sampled_from(classes), label="transform")
    required, args = table[cls]
    name = data.draw(st.sampled_from(sorted(args)), label="argument")
    arg = args[name]
    placement = data.draw(st.sampled_from(arg.placements()), label="placement")
    bad = data.draw(arg.bad_values(placement), label="bad value")
    value = arg.place(bad, placement)
    with pytest.raises((ValueError, TypeError)) as info:
        cls(**{**required, name: value})
    message = str(info.value)
    assert name in message, f"{cls.__name__}({name}={value!r}): the message does not name {name!r}: {message}"
    assert _shows(bad, message), f"{cls.__name__}({name}={value!r}): the message does not show {bad!r}: {message}"


@given(st.data())
def test_bad_numeric_argument_fails_at_construction(data):
    _check_bad_argument(data, TABLE)


@given(st.data())
def test_bad_container_argument_fails_at_construction(data):
    _check_bad_argument(data, CONTAINERS)


@pytest.mark.parametrize(
    "value", [NAN, INF, -INF, -0.5, 1.5, True, "abc", (0.5, NAN), (0.5, 2.0), (), [0.5, "a"]], ids=repr
)
def test_fill_is_checked_everywhere_it_is_accepted(value):
    for build in (
        lambda: ga.RandomRotation(10, fill=value),
        lambda: ga.CenterCrop(8, fill=value),
        lambda: ga.RandomCrop(8, fill=value),
        lambda: ga.Compose([ga.RandomRotation(10)], fill=value),
        lambda: ga.WarpOptions(fill=value),
    ):
        with pytest.raises((ValueError, TypeError), match="fill"):
            build()


# ------------------------------------------------------------------ checks that need the image


@pytest.mark.parametrize(
    "transform,channels",
    [
        (ga.RandomRotation((30, 30), fill=(0.5, 0.5)), 3),
        (ga.RandomRotation((30, 30), fill=(0.2, 0.4, 0.6)), 1),
        (ga.CenterCrop(20, fill=(0.1, 0.2, 0.3, 0.4)), 3),
        (ga.Compose([ga.RandomRotation((30, 30))], fill=(1.0, 0.0)), 3),
        (ga.Compose([ga.RandomCrop(20, pad_if_needed=True, fill=(0.5, 0.5)), ga.RandomRotation(5)], seed=0), 3),
    ],
    ids=["rotation-2-for-3", "rotation-3-for-1", "centercrop-4-for-3", "compose-override-2-for-3", "crop-inside-compose"],
)
def test_fill_with_wrong_channel_count_fails_at_the_call(transform, channels):
    image = torch.rand(2, channels, 12, 12)
    with pytest.raises(ValueError, match="fill") as info:
        transform(image)
    message = str(info.value)
    assert re.search(rf"\b{channels} channel", message), message


@pytest.mark.parametrize("fill", [0.25, (0.25,), (0.1, 0.2, 0.3)])
def test_fill_with_one_value_or_one_per_channel_works(fill):
    out = ga.RandomRotation((45, 45), fill=fill)(torch.zeros(1, 3, 9, 9))
    expected = torch.tensor(fill).reshape(-1).expand(3)
    assert torch.allclose(out[0, :, 0, 0], expected)  # the corner is all fill


def test_fill_channel_count_is_ignored_where_the_fill_is_unused():
    image = torch.rand(2, 1, 8, 8)
    out = ga.RandomRotation((30, 30), padding_mode="reflect", fill=(0.1, 0.2, 0.3))(image)
    assert out.shape == image.shape


def test_warp_options_check_channels():
    ga.WarpOptions(fill=(0.1, 0.2, 0.3)).check_channels(3)
    ga.WarpOptions(fill=(0.1,)).check_channels(4)
    ga.WarpOptions(fill=0.5).check_channels(7)
    ga.WarpOptions(padding_mode="border", fill=(0.1, 0.2)).check_channels(3)
    with pytest.raises(ValueError, match=r"fill has 2 values .* 3 channels"):
        ga.WarpOptions(fill=(0.1, 0.2)).check_channels(3)


@pytest.mark.parametrize("mean,std", [([0.5, 0.5], [0.5, 0.5]), ([0.5] * 4, [0.5] * 4)])
def test_normalize_channel_count_is_checked_at_the_call(mean, std):
    with pytest.raises(ValueError, match="mean/std"):
        ga.Normalize(mean, std)(torch.rand(1, 3, 4, 4))


# ------------------------------------------------------------------ valid arguments keep their meaning


def test_valid_arguments_keep_their_values():
    assert ga.ColorJitter(brightness=1.5).brightness == (0.0, 2.5)  # torchvision: max(0, 1 - b)
    assert ga.ColorJitter(brightness=(0, 2)).brightness == (0.0, 2.0)
    assert ga.ColorJitter(hue=0.5).hue == (-0.5, 0.5)
    assert ga.RandomRotation(30).degrees == (-30.0, 30.0)
    assert ga.RandomCrop(8, padding=(1, 2)).padding == (1, 2, 1, 2)
    assert ga.RandomCrop(8, padding=[3]).padding == (3, 3, 3, 3)
    assert ga.RandomGaussianBlur((3, 5)).kernel_size == (3, 5)
    assert ga.Normalize((0, 1), [1, 2]).std == (1.0, 2.0)
    assert ga.RandomRotation(3, fill=[0, 1, 0]).warp_options.fill == (0.0, 1.0, 0.0)
    assert ga.RandomAffine(0, shear=(1, 2, 3, 4)).shear_y == (3.0, 4.0)


def test_integer_fill_gives_the_same_image_as_float_fill():
    x = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    a = ga.RandomRotation((20, 20), fill=(1, 0, 1))(x)
    b = ga.RandomRotation((20, 20), fill=(1.0, 0.0, 1.0))(x)
    assert torch.equal(a, b)
