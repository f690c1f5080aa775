"""``Compose(..., backend="opencv")``: the fused chain on OpenCV's CPU kernels.

What must hold: the same parameters give outputs within rounding of the torch backend (same
matrices, colour maps and taps), a batch equals each sample run alone with its params rows, replay
is exact, targets are the torch backend's bit for bit, inputs are never modified, and every call the
backend cannot run goes to the torch backend unchanged.
"""

import cv2  # noqa: F401  (in the dev extra: a missing OpenCV must fail here, not skip)
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import genaug as ga
from genaug.transforms import opencv_backend
from genaug.transforms.base import take_rows


def smooth(b=6, c=3, h=40, w=48, dtype=torch.uint8, seed=0):
    """Natural-looking images: coarse noise upsampled, plus a little fine noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, max(h // 6, 2), max(w // 6, 2), generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    x = (x + 0.05 * torch.rand(x.shape, generator=g)).clamp_(0, 1)
    return (x * 255).round_().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


PIPELINES = {
    "imagenet-like": lambda: [ga.RandomResizedCrop((32, 32), scale=(0.3, 1.0)), ga.RandomRotation(30), ga.RandomScale((0.8, 1.2)),
                              ga.ColorJitter(0.4, 0.4, 0.4, 0.1), ga.RandomGaussianBlur(5, sigma=(0.1, 2.0))],
    "gated": lambda: [ga.RandomHorizontalFlip(), ga.RandomRotation(20, p=0.5), ga.RandomContrast(0.5, p=0.5),
                      ga.RandomBrightness(0.3, p=0.5), ga.RandomGaussianBlur(3, sigma=(0.5, 1.5), p=0.5)],
    "shrink (antialias)": lambda: [ga.RandomResizedCrop((12, 16), scale=(0.8, 1.0))],
    "upscale (fill by coverage)": lambda: [ga.Resize((80, 96)), ga.RandomRotation(15)],
    "fill colour": lambda: [ga.RandomRotation(40, fill=(0.2, 0.5, 0.9))],
    "reflect": lambda: [ga.RandomAffine(25, translate=(0.2, 0.2), padding_mode="reflect")],
    "border": lambda: [ga.RandomRotation(25, padding_mode="border")],
    "nearest": lambda: [ga.RandomRotation(25, interpolation="nearest")],
    "flips and integer crops": lambda: [ga.RandomCrop(24, padding=4), ga.RandomVerticalFlip()],
    "colour only": lambda: [ga.ColorJitter(0.5, 0.5, 0.5, 0.2)],
    "blur only": lambda: [ga.RandomGaussianBlur((3, 7), sigma=(0.3, 2.5))],
}


def both(ops, x, seed=0, **kwargs):
    out_t, params = ga.Compose(ops(), seed=seed, **kwargs)(x, return_params=True)
    out_o = ga.Compose(ops(), seed=seed, backend="opencv", **kwargs)(x, params=params)
    return out_t, out_o, params


def levels(a, b):
    d = a.double() - b.double()
    return d.abs() * (255.0 if a.is_floating_point() else 1.0)


THREE_CHANNELS_ONLY = ("imagenet-like", "colour only", "fill colour")  # hue/saturation, a fill per channel
CASES = [(n, c) for n in sorted(PIPELINES) for c in (1, 3) if c == 3 or n not in THREE_CHANNELS_ONLY]


@pytest.mark.parametrize(("name", "channels"), CASES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_agrees_with_the_torch_backend(name, dtype, channels):
    x = smooth(c=channels, dtype=dtype)
    out_t, out_o, _ = both(PIPELINES[name], x)
    assert out_o.shape == out_t.shape and out_o.dtype == out_t.dtype
    d = levels(out_t, out_o)
    # uint8 is rounded after each op on OpenCV (once on torch): a level or two, rarely more
    assert d.mean() < 0.35, d.mean()
    assert torch.quantile(d.flatten(), 0.999) <= 2.0
    if name != "nearest":  # a nearest pick on a tie may take the other neighbour
        assert d.max() <= 12.0, d.max()


def test_the_same_ops_do_run_on_opencv(monkeypatch):
    ran = []
    real = opencv_backend.run

    def spy(groups, batch):
        out = real(groups, batch)
        ran.append(out is not None)
        return out

    monkeypatch.setattr(opencv_backend, "run", spy)
    x = smooth()
    for ops in PIPELINES.values():
        ga.Compose(ops(), seed=0, backend="opencv")(x)
    assert ran == [True] * len(PIPELINES)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), b=st.integers(1, 20), dtype=st.sampled_from([torch.uint8, torch.float32]),
       name=st.sampled_from(sorted(PIPELINES)))
def test_a_batch_equals_each_sample_alone_and_replays(seed, b, dtype, name):
    x = smooth(b=b, dtype=dtype, seed=seed)
    aug = ga.Compose(PIPELINES[name](), seed=seed, backend="opencv")
    out, params = aug(x, return_params=True)
    assert torch.equal(aug(x, params=params), out)
    for i in range(b):
        assert torch.equal(aug(x[i:i + 1], params=take_rows(params, torch.tensor([i]))), out[i:i + 1])


def test_same_seed_same_output_and_threads_do_not_change_it(monkeypatch):
    x = smooth(b=40, h=136, w=136)  # large enough for the thread pool
    assert 3 * 136 * 136 >= opencv_backend._THREADS_MIN_VALUES
    used = []
    real = opencv_backend._for_each
    monkeypatch.setattr(opencv_backend, "_for_each", lambda fn, n, threaded=True: (used.append(threaded), real(fn, n, threaded)))
    aug = lambda: ga.Compose(PIPELINES["gated"]() + [ga.ColorJitter(0.3, 0.3, 0.3, 0.1)], seed=3, backend="opencv")  # noqa: E731
    first = aug()(x)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(aug()(x), first)
        torch.set_num_threads(2)
        assert torch.equal(aug()(x), first)
    finally:
        torch.set_num_threads(threads)
    assert used == [True] * 3


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), h_in=st.integers(2, 70), w_in=st.integers(2, 70), h=st.integers(1, 70),
       w=st.integers(1, 70), seed=st.integers(0, 2**16))
def test_numpy_coverage_is_the_torch_coverage_bit_for_bit(n, h_in, w_in, h, w, seed):
    """The OpenCV backend's fill weights (computed a block of samples at a time) are the torch
    backend's, bit for bit, and a sample's do not depend on the rest of its block."""
    from genaug.transforms.warp import coverage_coefficients, edge_coverage

    g = torch.Generator().manual_seed(seed)
    matrix = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    matrix[:, :2, :2] += 0.6 * torch.randn(n, 2, 2, generator=g, dtype=torch.float64)
    matrix[:, :2, 2] = 10 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    coeffs = coverage_coefficients(matrix, (h_in, w_in))
    block = opencv_backend.edge_coverage_numpy(coeffs, (h, w))
    expected = edge_coverage(matrix, (h_in, w_in), (h, w), torch.empty(0))[:, 0].numpy()
    assert block.shape == (n, h, w) and np.array_equal(block, expected)
    k = seed % n
    assert np.array_equal(opencv_backend.edge_coverage_numpy(coeffs[k:k + 1], (h, w))[0], block[k])


@pytest.mark.parametrize("layout", ["channels_last", "strided view", "unbatched"])
def test_input_layouts_give_the_same_numbers_and_inputs_are_not_modified(layout):
    x = smooth(b=5)
    aug = ga.Compose(PIPELINES["gated"](), seed=1, backend="opencv")
    want, params = aug(x, return_params=True)
    if layout == "channels_last":
        y = x.contiguous(memory_format=torch.channels_last)
        got = aug(y, params=params)
    elif layout == "strided view":
        wide = torch.zeros(5, 3, 40, 96, dtype=torch.uint8)
        wide[..., ::2] = x
        y = wide[..., ::2]
        got = aug(y, params=params)
    else:
        y = x[2]
        got = aug(y, params=take_rows(params, torch.tensor([2])))
        want = want[2]
    before = y.clone()
    assert torch.equal(got, want)
    assert torch.equal(y, before)
    assert got.is_contiguous()


def test_targets_are_the_torch_backends_bit_for_bit():
    x = smooth(b=4)
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 5, (4, 40, 48), generator=g)
    xy = torch.rand(4, 6, 2, generator=g) * torch.tensor([48.0, 40.0])
    boxes = torch.cat([xy, xy + 6], dim=-1)
    keypoints = torch.rand(4, 7, 2, generator=g) * 40
    labels = torch.arange(4)
    ops = PIPELINES["imagenet-like"]
    kw = dict(masks=masks, boxes=boxes, keypoints=keypoints, labels=labels)
    want, params = ga.Compose(ops(), seed=0)(x, return_params=True, **kw)
    got = ga.Compose(ops(), seed=0, backend="opencv")(x, params=params, **kw)
    assert set(got) == set(want)
    for key in want:
        if key != "image":
            assert torch.equal(got[key], want[key]), key
    assert levels(got["image"], want["image"]).mean() < 0.35


@pytest.mark.parametrize("case", ["float64", "requires grad", "five channels"])
def test_calls_it_cannot_run_at_all_go_to_the_torch_backend_unchanged(case):
    x = smooth(dtype=torch.float32)
    ops = [ga.RandomRotation(20), ga.RandomGaussianBlur(3)]
    if case == "float64":
        x = x.double()
    elif case == "requires grad":
        x = x.clone().requires_grad_(True)
    else:
        x = torch.cat([x, x[:, :2]], dim=1)
    want, params = ga.Compose(ops, seed=0)(x, return_params=True)
    got = ga.Compose(ops, seed=0, backend="opencv")(x, params=params)
    assert torch.equal(got, want)
    if case == "requires grad":  # and autograd still works through it
        got.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("case", ["noise op", "hsv hue", "module stage", "one of sizes"])
def test_ops_without_a_kernel_run_on_torch_after_the_opencv_part(case):
    x = smooth()
    ops = [ga.RandomRotation(20), ga.ColorJitter(0.3, 0.3)]
    if case == "noise op":
        ops.append(ga.RandomGaussianNoise(std=0.1))
    elif case == "hsv hue":
        ops.append(ga.ColorJitter(hue=0.2, hue_mode="hsv"))
    elif case == "module stage":
        ops.append(lambda t: t * 0.5)
    else:
        ops.append(ga.OneOf([ga.Compose([ga.Resize((20, 20)), ga.RandomBrightness(0.2)]), ga.CenterCrop(20)]))
    ops.append(ga.RandomGaussianBlur(3))  # after an op without a kernel: on torch too
    want, params = ga.Compose(ops, seed=0)(x, return_params=True)
    got = ga.Compose(ops, seed=0, backend="opencv")(x, params=params)
    assert got.shape == want.shape and got.dtype == torch.uint8
    assert levels(got, want).mean() < 0.35


def test_unsupported_says_why():
    from genaug.transforms.pipeline import Batch, Stage, group_stages

    aug = ga.Compose([ga.RandomRotation(10), ga.RandomGaussianNoise(std=0.1)], seed=0)
    x = smooth()
    params = aug.sample_params(x.shape[0], (40, 48), torch.Generator())
    groups = group_stages([Stage(*leaf) for leaf in aug.leaves(params, None)])
    assert "RandomGaussianNoise has no OpenCV kernel" in opencv_backend.unsupported(groups, Batch.from_inputs(x))
    assert "float64" in opencv_backend.unsupported(groups[:1], Batch.from_inputs(x.double()))
    assert opencv_backend.unsupported(groups[:1], Batch.from_inputs(x)) is None


def test_bad_backend_is_a_clear_error_and_the_backend_serializes():
    with pytest.raises(ValueError, match=r"backend must be one of \('torch', 'opencv'\), got 'cv2'"):
        ga.Compose([ga.RandomRotation(10)], backend="cv2")
    with pytest.raises(ValueError, match="backend must be one of"):
        ga.Compose([ga.RandomRotation(10)], backend=None)
    aug = ga.Compose(PIPELINES["imagenet-like"](), seed=5, backend="opencv")
    again = ga.from_dict(aug.to_dict())
    assert again.backend == "opencv"
    x = smooth()
    assert torch.equal(again(x), ga.Compose(PIPELINES["imagenet-like"](), seed=5, backend="opencv")(x))


def test_edge_batches():
    aug = ga.Compose(PIPELINES["imagenet-like"](), seed=0, backend="opencv")
    empty = aug(torch.zeros(0, 3, 40, 48, dtype=torch.uint8))
    assert empty.shape == (0, 3, 32, 32) and empty.dtype == torch.uint8
    tiny = ga.Compose([ga.RandomRotation(30), ga.ColorJitter(0.4, 0.4)], seed=0, backend="opencv")
    assert tiny(torch.full((3, 3, 1, 1), 200, dtype=torch.uint8)).shape == (3, 3, 1, 1)
    # a blur kernel larger than the image is refused as on the torch backend
    with pytest.raises(ValueError, match="too large for a 2x2 image"):
        ga.Compose([ga.RandomGaussianBlur(7)], backend="opencv")(torch.zeros(2, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        ga.Compose([ga.RandomRotation(5)], backend="opencv")(torch.full((1, 3, 8, 8), float("nan")))


def test_uint8_stays_in_range_without_wrapping():
    x = torch.cat([torch.zeros(4, 3, 16, 16, dtype=torch.uint8), torch.full((4, 3, 16, 16), 255, dtype=torch.uint8)])
    out = ga.Compose([ga.RandomRotation(30, padding_mode="border"), ga.ColorJitter(brightness=(1.8, 2.0), contrast=(1.8, 2.0))],
                     seed=0, backend="opencv")(x)
    assert out[4:].min() >= 200  # saturated, not wrapped to small values
    float_out = ga.Compose([ga.ColorJitter(brightness=(1.8, 2.0))], seed=0, backend="opencv")(x.float() / 255)
    assert float_out.min() >= 0 and float_out.max() <= 1


def test_dataloader_workers_run_it():
    from torch.utils.data import DataLoader, TensorDataset

    aug = ga.Compose(PIPELINES["imagenet-like"](), seed=0, backend="opencv")
    data = TensorDataset(smooth(b=8))
    loader = DataLoader(data, batch_size=4, num_workers=2, collate_fn=lambda items: aug(torch.stack([i[0] for i in items])))
    shapes = [tuple(batch.shape) for batch in loader]
    assert shapes == [(4, 3, 32, 32), (4, 3, 32, 32)]


def test_an_error_inside_a_worker_thread_reaches_the_caller_and_the_pool_survives(monkeypatch):
    x = smooth(b=32, h=136, w=136)
    aug = ga.Compose([ga.RandomRotation(20), ga.RandomGaussianBlur(5)], seed=0, backend="opencv")
    monkeypatch.setattr(opencv_backend, "_threads", lambda: 2)
    calls = []
    real = opencv_backend.separable_filter

    def failing(image, ky, kx, clamp=True):
        calls.append(1)
        if len(calls) == 20:
            raise RuntimeError("sample failed")
        return real(image, ky, kx, clamp)

    import genaug.transforms.photometric as photometric

    monkeypatch.setattr(photometric, "separable_filter", failing)
    with pytest.raises(RuntimeError, match="sample failed"):
        aug(x)
    monkeypatch.setattr(photometric, "separable_filter", real)
    out, params = aug(x, return_params=True)  # the pool still works after a failed call
    want = ga.Compose([ga.RandomRotation(20), ga.RandomGaussianBlur(5)], seed=0)(x, params=params)
    assert levels(out, want).max() <= 2


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float16])
def test_ops_after_the_first_one_without_a_kernel_run_on_torch(monkeypatch, dtype):
    """A Normalize or noise at the end keeps OpenCV for everything before it."""
    ran = []
    real = opencv_backend.run

    def spy(groups, batch):
        out = real(groups, batch)
        ran.append(None if out is None else len(out[1]))
        return out

    monkeypatch.setattr(opencv_backend, "run", spy)
    x = smooth(dtype=dtype)
    ops = lambda: PIPELINES["imagenet-like"]() + [ga.RandomGaussianNoise(std=0.05), ga.Normalize((0.5,) * 3, (0.2,) * 3)]  # noqa: E731
    want, params = ga.Compose(ops(), seed=0)(x, return_params=True)
    got = ga.Compose(ops(), seed=0, backend="opencv")(x, params=params)
    assert ran == [2]  # the first five ops on OpenCV, noise and Normalize left for torch
    assert got.dtype == want.dtype and got.shape == want.shape
    # the noise is the same draw; only OpenCV's rounding differs (x 5 after Normalize's std 0.2)
    assert (got.double() - want.double()).abs().mean() * 0.2 * 255 < 0.5


def test_a_generative_op_after_opencv_ops_sees_their_output(monkeypatch):
    """Replace stages split the chain: the OpenCV part runs first, then the torch segments."""
    class Invert(ga.Transform):  # a stand-in replace op: new images for the samples it picks
        kind = "replace"

        def _sample(self, n, size, generator):
            return {}

        def replace_samples(self, batch, params, index):
            return 1.0 - batch.image[index], batch.labels

    x = smooth()
    ops = lambda: [ga.RandomRotation(20), ga.ColorJitter(0.3, 0.3), Invert(), ga.RandomGaussianBlur(3)]  # noqa: E731
    want, params = ga.Compose(ops(), seed=0)(x, return_params=True)
    got = ga.Compose(ops(), seed=0, backend="opencv")(x, params=params)
    assert got.dtype == torch.uint8
    assert levels(got, want).mean() < 0.35 and levels(got, want).max() <= 3


def test_one_channel_strided_input():
    x = smooth(b=3, c=1)
    wide = torch.zeros(3, 1, 40, 96, dtype=torch.uint8)
    wide[..., ::2] = x
    aug = ga.Compose(PIPELINES["gated"](), seed=2, backend="opencv")
    want, params = aug(x, return_params=True)
    assert torch.equal(aug(wide[..., ::2], params=params), want)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_the_thread_pool_is_not_reused_across_a_fork():
    """A forked child (a DataLoader worker) must not submit to the parent's pool, whose threads it lacks."""
    import os
    import signal
    import sys

    x = smooth(b=24, h=136, w=136)
    aug = ga.Compose(PIPELINES["gated"](), seed=0, backend="opencv")
    # 2 threads for genaug's pool only (torch's own OpenMP pool is not fork-safe, so torch keeps 1)
    opencv_backend_threads = opencv_backend._threads
    opencv_backend._threads = lambda: 2
    try:
        want, params = aug(x, return_params=True)  # the parent's pool now exists
    finally:
        opencv_backend._threads = opencv_backend_threads
    assert any(pid == os.getpid() for pid, _ in opencv_backend._pools)
    pid = os.fork()
    if pid == 0:  # child: a hang would be a deadlock on the parent's pool
        signal.alarm(30)
        opencv_backend._threads = lambda: 2
        try:
            ok = torch.equal(aug(x, params=params), want) and any(p == os.getpid() for p, _ in opencv_backend._pools)
        except BaseException as exc:  # reported by the parent's assertion (exit status 2)
            print(repr(exc), file=sys.stderr, flush=True)
            os._exit(2)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
