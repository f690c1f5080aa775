"""FID / KID and the feature extraction behind them: known values, inputs of every kind, clear errors."""

import numpy as np
import pytest
import torch

from genaug.data import load_builtin
from genaug.metrics import FeatureSet, extract_features, fid, frechet_distance, kernel_distance, kid


@pytest.fixture(scope="module")
def test_split():
    return load_builtin("mnist5k", "test")


@pytest.fixture(scope="module")
def real_features(test_split):
    return extract_features(test_split)


def test_fid_of_a_set_against_itself_is_zero(real_features):
    assert fid(real_features, real_features) == pytest.approx(0.0, abs=1e-6)


def test_fid_rises_monotonically_with_noise(test_split, real_features):
    images = test_split.images[:500]
    real = real_features.select(torch.arange(500))
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(images.shape, generator=g)
    values = [fid(real, (images.float() / 255 + s * noise).clamp(0, 1)) for s in (0.0, 0.05, 0.1, 0.2, 0.4)]
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_fid_matches_the_scipy_sqrtm_formula():
    import scipy.linalg as scipy_linalg
    g = torch.Generator().manual_seed(1)
    a = torch.randn(400, 16, generator=g, dtype=torch.float64)
    b = torch.randn(300, 16, generator=g, dtype=torch.float64) @ torch.diag(torch.linspace(0.5, 2, 16, dtype=torch.float64)) + 0.3
    mu1, mu2 = a.mean(0).numpy(), b.mean(0).numpy()
    s1, s2 = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_uint8_float_tensor_pair_and_datasets_give_the_same_features(test_split):
    x, y = test_split.images[:40], test_split.labels[:40]
    ref = extract_features(x)
    assert ref.labels is None and ref.features.dtype == torch.float64 and ref.features.shape == (40, 128)
    same = [extract_features(x.float() / 255), extract_features((x, y)),
            extract_features(torch.utils.data.TensorDataset(x, y)),
            extract_features(load_builtin(torch.utils.data.TensorDataset(x, y)))]
    for fs in same:
        torch.testing.assert_close(fs.features, ref.features, rtol=0, atol=1e-9)
    assert torch.equal(same[1].labels, y) and torch.equal(same[2].labels, y)
    assert extract_features(ref) is ref


def test_custom_extractor_module():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 6))
    x = torch.rand(30, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    fs = extract_features(x, net)
    assert fs.features.shape == (30, 6) and fs.extractor == "custom:Sequential"
    assert fid(x, x, features=net) == pytest.approx(0.0, abs=1e-9)
    assert fid(x, x.flip(-1), features=net) > 0


def test_kid_is_seeded_and_near_zero_for_two_halves(real_features):
    a, b = real_features.select(torch.arange(0, 1000, 2)), real_features.select(torch.arange(1, 1000, 2))
    r1 = kernel_distance(a, b, subsets=20, subset_size=200, seed=0)
    assert r1 == kernel_distance(a, b, subsets=20, subset_size=200, seed=0)
    assert r1 != kernel_distance(a, b, subsets=20, subset_size=200, seed=1)
    far = kernel_distance(a, FeatureSet(b.features + 1.0, None, b.extractor, b.image_shape), subsets=20,
                          subset_size=200)
    assert abs(r1.mean) < 3 * r1.std + 1e-3 < far.mean


def test_kid_on_images_default_subset_size(test_split):
    x = test_split.images[:60]
    res = kid(x[:30], x[30:], subsets=3)              # subsets of min(1000, 30, 30) = 30 samples
    assert res.std == pytest.approx(0.0, abs=1e-9)    # each subset is the whole set: no spread
    assert res.mean == kid(x[:30], x[30:], subsets=3, subset_size=30).mean


@pytest.mark.parametrize("kwargs, message", [
    ({"subset_size": 50}, r"subset_size=50 is not allowed: real has 40 samples; allowed: 2\.\.40"),
    ({"subset_size": 1}, r"subset_size=1 is not allowed"),
    ({"subsets": 0}, r"subsets=0 must be a positive int"),
    ({"degree": 0}, r"degree=0"),
    ({"coef": -1.0}, r"coef=-1.0"),
])
def test_kid_argument_errors(kwargs, message):
    f = torch.randn(40, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        kernel_distance(f, torch.randn(60, 4, dtype=torch.float64), **kwargs)


def test_input_errors_name_the_argument_and_the_allowed_values():
    grey, rgb = torch.rand(10, 1, 28, 28), torch.rand(10, 3, 28, 28)
    with pytest.raises(ValueError, match=r"real images are 1x28x28 but fake images are 3x28x28"):
        fid(grey, rgb)
    with pytest.raises(ValueError, match=r"real images are 1x28x28 but fake images are 1x32x32"):
        fid(grey, torch.rand(10, 1, 32, 32))
    with pytest.raises(ValueError, match=r"fake has 1 image\(s\); this metric needs at least 2"):
        fid(grey, grey[:1])
    with pytest.raises(ValueError, match=r"real is empty"):
        fid(grey[:0], grey)
    with pytest.raises(ValueError, match=r"fake: float images must be in \[0, 1\]; got values in \[0.0\d+, 255\]"):
        fid(grey, grey * 255)
    with pytest.raises(ValueError, match=r"fake contains NaN"):
        fid(grey, torch.full_like(grey, float("nan")))
    with pytest.raises(ValueError, match=r"add a batch dimension"):
        fid(grey[0], grey)
    with pytest.raises(TypeError, match=r"must be uint8 \(0..255\) or floating point"):
        fid(grey, torch.ones(10, 1, 28, 28, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"real must be a tensor"):
        fid([1, 2, 3], grey)
    with pytest.raises(ValueError, match=r"no default feature extractor for 3x32x32 images"):
        fid(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32))
    with pytest.raises(ValueError, match=r"a feature extractor must be a classifier"):
        fid(grey, grey, features="mnist-cgan")
    with pytest.raises(ValueError, match=r"2 images but 3 labels"):
        fid((grey[:2], torch.tensor([0, 1, 2])), grey)


def test_feature_sets_from_different_extractors_are_refused():
    a = FeatureSet(torch.randn(10, 4, dtype=torch.float64), None, "mnist-classifier", (1, 28, 28))
    b = FeatureSet(torch.randn(10, 4, dtype=torch.float64), None, "inception-v3-compat/2048", (1, 28, 28))
    with pytest.raises(ValueError, match=r"comparable only with one extractor"):
        fid(a, b)


def test_inception_needs_a_local_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"never downloads weights"):
        fid(torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28), features=f"inception:{tmp_path / 'missing.pth'}")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(ValueError, match=r"could not read it as a weights file"):
        extract_features(torch.rand(2, 1, 28, 28), f"inception:{bad}")


def test_inception_features_from_a_local_file(tmp_path, monkeypatch):
    """The plumbing with random weights (the real file is 91 MB and never downloaded)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    from safetensors.torch import save_file

    with monkeypatch.context() as m:   # build the architecture once without any weights
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        torch.manual_seed(0)
        skeleton = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in skeleton.state_dict().items()}, str(path))
    fs = extract_features(torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)), f"inception:{path}")
    assert fs.features.shape == (2, 2048) and fs.extractor == "inception-v3-compat/2048"
    assert torch.isfinite(fs.features).all()
