"""Corruption / RandomCorruption numeric arguments fail at construction, naming the argument and value
(the same hypothesis machinery as tests/test_arguments.py, for the robustness transforms)."""

from hypothesis import given
from hypothesis import strategies as st

import genaug as ga
from tests.test_arguments import COLOR_COMMON, Arg, _check_bad_argument, ints_outside, numeric_parameters

#: The rows tests/test_arguments.py's TABLE needs for these two public transforms.
ROBUSTNESS_TABLE = {
    ga.Corruption: ({"name": "fog", "severity": 3}, {"severity": Arg(3, None, ints_outside(1, 5)), **COLOR_COMMON}),
    ga.RandomCorruption: ({}, {"severity": Arg(3, (1, 5), ints_outside(1, 5), ints_outside(1, 5)), **COLOR_COMMON}),
}


def test_rows_cover_every_numeric_argument_and_valid_values_construct():
    for cls, (required, args) in ROBUSTNESS_TABLE.items():
        assert numeric_parameters(cls) == set(args), cls.__name__
        cls(**required)
        for name, arg in args.items():
            cls(**{**required, name: arg.valid})
            if arg.sequence is not None:
                cls(**{**required, name: arg.sequence})


@given(st.data())
def test_bad_numeric_argument_fails_at_construction(data):
    _check_bad_argument(data, ROBUSTNESS_TABLE)
