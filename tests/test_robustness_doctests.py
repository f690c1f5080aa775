"""The docstring examples of genaug.robustness run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["genaug.robustness", "genaug.robustness.tables", "genaug.robustness.formulas",
           "genaug.robustness.transforms", "genaug.robustness.corruptions", "genaug.robustness.cli",
           "genaug.robustness.frost"]  # (evaluation: its examples load data and models; tested in test_robustness_evaluate)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
