"""Robustness benchmarking: the 19 corruptions of Hendrycks & Dietterich (2019) with the published
severity tables (CIFAR-10-C, Tiny-ImageNet-C, ImageNet-C), batched on any device; CE / mCE /
relative mCE; evaluation with JSON, CSV, Markdown and PNG reports; a generative-shift test.

Example:
    >>> import torch
    >>> from genaug import robustness as rb
    >>> x = torch.rand(8, 3, 32, 32)
    >>> rb.corrupt(x, "contrast", 5, generator=torch.Generator().manual_seed(0)).std() < x.std()
    tensor(True)
    >>> round(rb.mce({"fog": [0.2] * 5}, {"fog": [0.4] * 5}), 3)
    0.5
"""

from genaug.robustness.corruptions import CORRUPTIONS, corrupt
from genaug.robustness.formulas import ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, corruption_errors, mce, relative_mce
from genaug.robustness.tables import ALL, BENCHMARK, EXTRA, TABLES, table_for_size
from genaug.robustness.transforms import Corruption, RandomCorruption

__all__ = [
    "ALEXNET_CLEAN_ERROR", "ALEXNET_ERRORS", "ALL", "BENCHMARK", "CORRUPTIONS", "Corruption", "EXTRA",
    "RandomCorruption", "RobustnessResult", "TABLES", "corrupt", "corruption_errors", "evaluate",
    "generative_shift", "mce", "relative_mce", "table_for_size", "write_report",
]


def __getattr__(name: str):  # evaluation and reports load on first use (matplotlib, tqdm)
    if name in ("evaluate", "RobustnessResult", "generative_shift", "GenerativeShift"):
        from genaug.robustness import evaluation as _evaluation

        return getattr(_evaluation, name)
    if name == "write_report":
        from genaug.robustness.report import write_report

        return write_report
    raise AttributeError(f"module 'genaug.robustness' has no attribute {name!r}")
