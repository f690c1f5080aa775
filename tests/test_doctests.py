"""Every docstring example in the transform modules runs and prints what it claims."""

import doctest
import importlib

import pytest

MODULES = [
    "genaug",
    "genaug.transforms.base",
    "genaug.transforms.geometric",
    "genaug.transforms.photometric",
    "genaug.transforms.compose",
    "genaug.transforms.serialization",
    "genaug._atomic",
    "genaug._device",
    "genaug._folders",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
