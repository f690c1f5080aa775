"""The metrics on CUDA images give the CPU's numbers (deselected without a GPU)."""

import pytest
import torch

from genaug.data import load_builtin
from genaug.metrics import (diversity, evaluate_generator, extract_features, fid, gan_test, kid,
                            precision_recall, psnr, ssim, write_report)

pytestmark = pytest.mark.cuda  # deselected without a GPU (tests/conftest.py)


@pytest.fixture(scope="module")
def split():
    return load_builtin("mnist5k", "test")


def test_feature_metrics_on_cuda_match_cpu(split):
    a, b = (split.images[::2], split.labels[::2]), (split.images[1::2], split.labels[1::2])
    a_gpu, b_gpu = (a[0].cuda(), a[1]), (b[0].cuda(), b[1])
    fa, fb = extract_features(a_gpu), extract_features(b_gpu)
    assert fa.features.device.type == "cpu" and fa.features.dtype == torch.float64
    torch.testing.assert_close(fa.features, extract_features(a).features, rtol=1e-4, atol=1e-4)   # no TF32
    assert torch.backends.cudnn.allow_tf32                        # the user's setting is restored
    assert fid(a_gpu[0], b_gpu[0]) == pytest.approx(fid(a[0], b[0]), rel=1e-3)
    assert kid(fa, fb, subsets=10, subset_size=200).mean == pytest.approx(
        kid(a[0], b[0], subsets=10, subset_size=200).mean, rel=1e-2, abs=1e-4)
    pr_gpu, pr_cpu = precision_recall(fa, fb), precision_recall(a[0], b[0])
    assert pr_gpu.precision == pytest.approx(pr_cpu.precision, abs=0.01)
    assert pr_gpu.recall == pytest.approx(pr_cpu.recall, abs=0.01)
    assert diversity(fa, fb).score == pytest.approx(diversity(a, b).score, rel=1e-3)
    assert gan_test(a_gpu).accuracy == gan_test(a).accuracy


def test_image_quality_on_cuda(split):
    x = split.images[:50]
    y = (x.float() / 255 * 0.9).clamp(0, 1)
    assert psnr(x.cuda(), y.cuda()) == pytest.approx(psnr(x, y), abs=1e-6)
    assert ssim(x.cuda(), y.cuda()) == pytest.approx(ssim(x, y), abs=1e-9)


def test_report_on_cuda(tmp_path):
    rep = evaluate_generator("mnist-cvae", num=200, device="cuda", cas_seeds=(0,), cas_steps=3, cas_per_class=20,
                             kid_subsets=5, progress=False)
    assert rep.settings["device"] == "cuda" and rep.summary["fid"] > 0 and rep.summary["psnr"] > 15
    assert len(write_report(rep, tmp_path)) == 4
