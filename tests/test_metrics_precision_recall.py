"""Improved precision / recall, diversity and coverage, GAN-test."""

import pytest
import torch

from genaug.data import load_builtin
from genaug.metrics import (coverage_features, diversity, extract_features, gan_test, mean_pairwise_distance,
                            precision_recall, precision_recall_features)
from genaug.metrics.knn_manifold import knn_radii


@pytest.fixture(scope="module")
def test_split():
    return load_builtin("mnist5k", "test")


@pytest.fixture(scope="module")
def halves(test_split):
    fs = extract_features(test_split)
    return fs.select(torch.arange(0, 1000, 2)), fs.select(torch.arange(1, 1000, 2))


def test_two_halves_of_real_data_have_high_precision_and_recall(halves):
    pr = precision_recall(*halves, k=3)
    assert pr.precision > 0.8 and pr.recall > 0.8, pr


def test_collapsed_generator_has_zero_recall(test_split, halves):
    real, _ = halves
    collapsed = test_split.images[2:3].repeat(500, 1, 1, 1)          # one real image (of the even half), repeated
    pr = precision_recall(real, collapsed, k=3)
    # perfectly real, no variety: the only real sample it covers is image 2 itself (distance 0 <= radius 0)
    assert pr.precision == 1.0 and pr.recall == 1 / 500


def _brute_force(real, fake, k):
    def radius(x, i):
        return sorted(float((x[i] - x[j]).norm()) for j in range(len(x)))[k]   # index 0 is the point itself

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, i) for i in range(len(fake))]
    precision = sum(any(float((f - real[j]).norm()) <= r_real[j] for j in range(len(real))) for f in fake) / len(fake)
    recall = sum(any(float((r - fake[j]).norm()) <= r_fake[j] for j in range(len(fake))) for r in real) / len(real)
    return precision, recall


def test_matches_the_definition():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(40, 3, generator=g, dtype=torch.float64)
    fake = 0.5 * torch.randn(30, 3, generator=g, dtype=torch.float64) + 0.4
    assert tuple(precision_recall_features(real, fake, k=3)) == pytest.approx(_brute_force(real, fake, 3), abs=1e-12)


def test_agrees_with_torch_fidelity():
    """torch-fidelity >= 0.4 takes (generated, real); before 0.4 precision and recall came out swapped (its issue #58)."""
    import torch_fidelity.metric_prc as prc  # the metrics extra requires torch-fidelity >= 0.4
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 8, generator=g, dtype=torch.float64)
    fake = 0.7 * torch.randn(200, 8, generator=g, dtype=torch.float64) + 0.5   # tighter: high precision, low recall
    for k in (1, 3, 5):
        ours = precision_recall_features(real, fake, k)
        assert ours.precision > ours.recall
        assert tuple(ours) == pytest.approx(prc.calculate_precision_recall_full(fake, real, neighborhood=k), abs=1e-6)


def test_knn_radii_and_k_errors():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match=r"k=4 needs at least k \+ 1 = 5 samples in each set; real has 4"):
        precision_recall_features(x, x, k=4)
    with pytest.raises(ValueError, match=r"k=0 must be a positive int"):
        precision_recall_features(x, x, k=0)
    with pytest.raises(ValueError, match=r"k=3 needs at least k \+ 1 = 4 samples in each set; fake has 3"):
        precision_recall(torch.rand(10, 1, 28, 28), torch.rand(3, 1, 28, 28), k=3)


def test_diversity_of_real_halves_and_of_one_image_per_class(test_split):
    a = (test_split.images[0::2], test_split.labels[0::2])
    b = (test_split.images[1::2], test_split.labels[1::2])
    fa, fb = extract_features(a), extract_features(b)
    real_vs_real = diversity(fa, fb)
    assert 0.85 < real_vs_real.score < 1.15 and real_vs_real.coverage > 0.85
    assert set(real_vs_real.per_class) == set(range(10))
    one_each = (test_split.images[::100].repeat_interleave(20, 0), test_split.labels[::100].repeat_interleave(20))
    collapsed = diversity(fa, one_each)
    assert collapsed.score == 0.0 and collapsed.coverage < 0.2
    assert all(v == 0.0 for v in collapsed.per_class.values())


def test_diversity_helpers():
    assert mean_pairwise_distance(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == 5.0
    assert mean_pairwise_distance(torch.zeros(1, 3)) is None
    real = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert coverage_features(real, real, k=5) == 1.0
    assert coverage_features(real, real[:1], k=5) < 0.2
    with pytest.raises(ValueError, match=r"k=60 needs at least k \+ 1 = 61 samples"):
        coverage_features(real, real, k=60)


def test_gan_test_on_real_held_out_digits(test_split):
    res = gan_test(test_split)
    assert res.accuracy == pytest.approx(0.967, abs=1e-9)           # the classifier's documented test accuracy
    assert set(res.per_class) == set(range(10)) and all(n == 100 for n in res.counts.values())
    assert sum(map(sum, res.confusion)) == 1000
    assert sum(res.confusion[c][c] for c in range(10)) == 967
    same = gan_test(test_split.images.float() / 255, labels=test_split.labels)
    assert same.accuracy == res.accuracy


def test_gan_test_errors(test_split):
    x = test_split.images[:5]
    with pytest.raises(ValueError, match=r"needs the class of every generated image"):
        gan_test(x)
    with pytest.raises(ValueError, match=r"labels must be in 0..9"):
        gan_test(x, labels=torch.tensor([0, 1, 2, 3, 12]))
    with pytest.raises(ValueError, match=r"GAN-test needs a classifier trained on real data"):
        gan_test(x, labels=torch.zeros(5, dtype=torch.long), classifier="mnist-cvae")
    with pytest.raises(ValueError, match=r"images are 3x28x28 but the classifier takes 1x28x28"):
        gan_test(torch.rand(2, 3, 28, 28), labels=torch.zeros(2, dtype=torch.long))
