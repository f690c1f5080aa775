"""DeviceLoader: batches to the device, augmented there; structure mapping, reproducibility, no host sync.

The CUDA path (side stream, events, ``record_stream``) is checked here on the CPU through a fake
stream object that records the protocol; the tests marked ``cuda`` run it for real on a GPU.
"""

import collections
import doctest

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import genaug as ga
from genaug.data import device_loader as dl_module
from genaug.data.device_loader import DeviceLoader


def images(n=10, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


def pipeline(seed=0, size=24):
    return ga.Compose([ga.RandomResizedCrop(size, scale=(0.5, 1.0)), ga.RandomRotation(20),
                       ga.RandomHorizontalFlip(), ga.ColorJitter(0.4, 0.4, 0.4, 0.05)], seed=seed)


def test_docstring_examples():
    result = doctest.testmod(dl_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------- what comes out
def test_tuple_batches_equal_the_pipeline_called_on_each_collated_batch():
    x, y = images(10), torch.arange(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    out = list(DeviceLoader(loader, pipeline(0), device="cpu"))
    twin = pipeline(0)
    assert len(out) == 3 and [type(b) for b in out] == [list] * 3  # default_collate gives lists: kept
    for (xb, yb), (ob, lb) in zip(loader, out):
        expected = twin(xb, labels=yb)
        assert torch.equal(ob, expected["image"]) and torch.equal(lb, yb)
        assert ob.dtype == torch.uint8 and ob.shape[1:] == (3, 24, 24)


def test_a_tensor_batch_comes_back_as_a_tensor_and_tuples_stay_tuples():
    x = images(8)
    out = list(DeviceLoader([x[:4], x[4:]], pipeline(1), device="cpu"))
    twin = pipeline(1)
    assert all(torch.equal(o, twin(b)) for o, b in zip(out, [x[:4], x[4:]]))
    (res,) = DeviceLoader([(x[:4], torch.arange(4), "meta-info")], pipeline(1), device="cpu")
    assert isinstance(res, tuple) and len(res) == 3 and res[2] == "meta-info"


def test_dict_batches_with_targets_follow_the_pipeline_and_keep_their_keys():
    x = images(6)
    masks = torch.randint(0, 4, (6, 32, 32))
    boxes = torch.tensor([[4.0, 4.0, 20.0, 20.0], [0.0, 0.0, 31.0, 31.0]]).repeat(6, 1, 1)
    points = torch.rand(6, 3, 2) * 31
    batch = {"image": x, "masks": masks, "boxes": boxes, "keypoints": points, "labels": torch.arange(6),
             "index": torch.arange(6) + 100, "names": [f"f{i}" for i in range(6)]}
    (out,) = DeviceLoader([batch], pipeline(2), device="cpu")
    expected = pipeline(2)(x, masks=masks, boxes=boxes, keypoints=points, labels=torch.arange(6))
    assert list(out) == [*batch, "boxes_valid", "keypoints_valid"]
    for key in ("image", "masks", "boxes", "keypoints", "labels", "boxes_valid", "keypoints_valid"):
        assert torch.equal(out[key], expected[key]), key
    assert torch.equal(out["index"], batch["index"]) and out["names"] == batch["names"]


def test_fields_name_the_roles_of_other_keys_and_positions():
    x, m = images(4), torch.randint(0, 3, (4, 32, 32))
    boxes = torch.tensor([[[2.0, 2.0, 10.0, 12.0]]]).repeat(4, 1, 1)
    (seg,) = DeviceLoader([(x, m)], pipeline(3), device="cpu", fields=("image", "masks"))
    ref = pipeline(3)(x, masks=m)
    assert torch.equal(seg[0], ref["image"]) and torch.equal(seg[1], ref["masks"])
    # tuple: boxes_valid has no slot, so it is appended after the batch's own positions
    (det,) = DeviceLoader([(x, torch.arange(4), boxes, "id")], pipeline(3), device="cpu",
                          fields=("image", "labels", "boxes", None))
    ref = pipeline(3)(x, boxes=boxes, labels=torch.arange(4))
    assert len(det) == 5 and det[3] == "id"
    assert torch.equal(det[2], ref["boxes"]) and torch.equal(det[4], ref["boxes_valid"])
    hf = {"pixel_values": x, "label": torch.arange(4), "bbox": boxes}
    (out,) = DeviceLoader([hf], pipeline(3), device="cpu", fields={"pixel_values": "image", "label": "labels",
                                                                   "bbox": "boxes"})
    assert list(out) == ["pixel_values", "label", "bbox", "bbox_valid"]
    assert torch.equal(out["pixel_values"], ref["image"]) and torch.equal(out["bbox_valid"], ref["boxes_valid"])


def test_a_namedtuple_batch_keeps_its_type():
    Pair = collections.namedtuple("Pair", "image label")
    (out,) = DeviceLoader([Pair(images(2), torch.arange(2))], pipeline(0), device="cpu")
    assert isinstance(out, Pair) and out.image.shape == (2, 3, 24, 24)


def test_labels_are_replaced_by_the_pipelines_labels():
    from genaug.generative import VAEConfig
    from genaug.generative.models.vae import ConditionalVAE

    torch.manual_seed(0)
    vae = ConditionalVAE(VAEConfig(image_size=28, channels=1, num_classes=6, latent_dim=4, enc_width=8, dec_width=8))
    digits = torch.rand(6, 1, 28, 28)
    aug = ga.Compose([ga.RandomRotation(10), ga.LatentInterpolate(vae, p=1.0)], seed=0)  # soft labels (B, K)
    (x, y), = DeviceLoader([(digits, torch.tensor([0, 1, 2, 3, 4, 5]))], aug, device="cpu")
    assert y.shape == (6, 6) and y.dtype.is_floating_point
    assert torch.allclose(y.sum(1), torch.ones(6))
    (_, y_plain), = DeviceLoader([(digits, torch.arange(6))], ga.Compose([ga.RandomRotation(10)]), device="cpu")
    assert torch.equal(y_plain, torch.arange(6))  # a pipeline that does not touch labels returns them unchanged


def test_each_sample_gets_its_own_parameters():
    same = images(1).repeat(8, 1, 1, 1)
    (out,) = DeviceLoader([same], pipeline(0), device="cpu")
    assert len({out[i].numpy().tobytes() for i in range(8)}) == 8


def test_len_iteration_and_the_wrapped_loaders_attributes():
    loader = DataLoader(TensorDataset(images(10), torch.arange(10)), batch_size=3)
    dev = DeviceLoader(loader, pipeline(0), device="cpu")
    assert len(dev) == 4 == len(list(dev)) == len(list(dev))  # re-iterable, like the loader
    assert dev.dataset is loader.dataset and dev.sampler is loader.sampler and dev.batch_size == 3
    assert [b[0].shape[0] for b in dev] == [3, 3, 3, 1]
    assert list(DeviceLoader([], None, device="cpu")) == []
    assert "DeviceLoader(DataLoader" in repr(dev)
    with pytest.raises(TypeError, match="has no len"):
        len(DeviceLoader(iter([images(2)]), None, device="cpu"))


def test_an_empty_batch_passes():
    (out, y), = DeviceLoader([(images(0), torch.arange(0))], pipeline(0), device="cpu", dtype=torch.float32,
                             mean=(0.5,), std=(0.5,))
    assert out.shape == (0, 3, 24, 24) and y.shape == (0,)


# ----------------------------------------------------------------------------- conversion
def test_uint8_to_float_normalization_and_channels_last():
    x = images(4)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    (out,) = DeviceLoader([x], pipeline(5), device="cpu", dtype=torch.float32, mean=mean, std=std,
                          channels_last=True)
    # the pipeline runs on float 0..1 (no rounding back to uint8), then (x - mean) / std
    augmented = pipeline(5)(x.float() / 255)
    expected = (augmented - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    (plain,) = DeviceLoader([x], None, device="cpu", mean=0.5, std=0.25)  # one value for all channels, float32
    torch.testing.assert_close(plain, (x.float() / 255 - 0.5) / 0.25, rtol=1e-6, atol=1e-6)
    (scaled,) = DeviceLoader([x], None, device="cpu", dtype=torch.float64)
    assert scaled.dtype == torch.float64 and torch.equal(scaled, x.double() / 255)
    (kept,) = DeviceLoader([x], None, device="cpu")
    assert torch.equal(kept, x)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_output_is_the_float32_result_rounded_once(dtype):
    x = images(4)
    kw = dict(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    (ref,) = DeviceLoader([x], pipeline(6), device="cpu", dtype=torch.float32, **kw)
    (low,) = DeviceLoader([x], pipeline(6), device="cpu", dtype=dtype, **kw)
    assert low.dtype == dtype and torch.equal(low, ref.to(dtype))
    (u,) = DeviceLoader([x], None, device="cpu", dtype=dtype)
    assert torch.equal(u, (x.float() / 255).to(dtype))


# ----------------------------------------------------------------------------- reproducibility
def _epoch(seed, workers=0, prefetch=True):
    data = TensorDataset(images(12), torch.arange(12))
    loader = DataLoader(data, batch_size=4, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(seed))
    return list(DeviceLoader(loader, pipeline(seed), device="cpu", prefetch=prefetch, dtype=torch.float32))


def test_a_seeded_pipeline_and_a_seeded_loader_reproduce_an_epoch():
    a, b, c = _epoch(0), _epoch(0, prefetch=False), _epoch(1)
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])  # another seed: another order and other parameters


def test_reproducible_with_decoding_workers():
    a, b = _epoch(3, workers=2), _epoch(3, workers=2)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, _epoch(3)))  # workers only decode: same batches


def test_seed_none_follows_torch_manual_seed():
    def run():
        torch.manual_seed(7)
        aug = ga.Compose([ga.RandomRotation(30), ga.ColorJitter(0.4, 0.4)])
        return next(iter(DeviceLoader([images(4)], aug, device="cpu")))

    assert torch.equal(run(), run())


# ----------------------------------------------------------------------------- no host sync
@pytest.mark.parametrize("source", ["cpu", "meta"])
def test_no_value_is_read_on_the_device(source):
    """On ``meta`` any read of a device value raises, so this proves the per-batch path has no host sync."""
    meta = dict(device=source)
    batch = {"image": torch.empty(4, 3, 32, 32, dtype=torch.uint8, **meta),
             "masks": torch.empty(4, 32, 32, dtype=torch.int64, **meta),
             "boxes": torch.empty(4, 2, 4, **meta), "keypoints": torch.empty(4, 3, 2, **meta),
             "labels": torch.empty(4, dtype=torch.int64, **meta), "extra": [torch.empty(4, **meta)]}
    if source == "cpu":
        batch = {k: (v.zero_() if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
    aug = ga.Compose([ga.RandomResizedCrop(24), ga.RandomRotation(30, p=0.5), ga.ColorJitter(0.4, 0.4, 0.4, 0.1),
                      ga.RandomGaussianBlur(5, p=0.5)], seed=0)
    loader = DeviceLoader([batch, batch], aug, device="meta", dtype=torch.bfloat16, mean=(0.5, 0.5, 0.5),
                          std=(0.2, 0.2, 0.2), channels_last=True)
    for out in loader:
        assert all(t.device.type == "meta" for t in dl_module._tensors(out))
        assert out["image"].dtype == torch.bfloat16 and out["image"].shape == (4, 3, 24, 24)
        assert out["image"].is_contiguous(memory_format=torch.channels_last)


def test_the_meta_check_does_catch_a_read_inside_the_loader():
    reads = ga.Compose([lambda x: x * 2 if bool(x.sum() > 0) else x])  # a host sync per batch
    with pytest.raises(RuntimeError):
        next(iter(DeviceLoader([torch.empty(2, 3, 8, 8, device="meta")], reads, device="meta")))


# ----------------------------------------------------------------------------- the CUDA protocol, faked
class FakeStreams:
    """Stands in for ``_CudaStreams``: records the order of issue / deliver and what is handed over."""

    def __init__(self):
        self.log, self.handed, self.inputs = [], [], []

    def issue(self, fn, inputs):
        self.inputs.append(inputs)
        result = fn()
        self.log.append(("issue", len(self.inputs) - 1))
        return result, len(self.inputs) - 1

    def deliver(self, result, event):
        self.log.append(("deliver", event))
        self.handed.append(list(dl_module._tensors(result)))
        return result


def test_prefetch_queues_the_next_batch_before_handing_over_the_current_one():
    x = images(12)
    raw = [{"image": x[i:i + 4], "labels": torch.arange(4), "extra": (torch.zeros(4), "s")} for i in (0, 4, 8)]
    dev = DeviceLoader(raw, pipeline(0), device="cpu")
    streams = FakeStreams()
    seen = []
    for out in dev._iter_prefetch(streams):
        seen.append(out)
        streams.log.append(("consumer", len(seen) - 1))
    assert streams.log == [("issue", 0), ("issue", 1), ("deliver", 0), ("consumer", 0), ("issue", 2),
                           ("deliver", 1), ("consumer", 1), ("deliver", 2), ("consumer", 2)]
    # the raw batch goes with its work (its CUDA tensors get record_stream(side))
    assert all(a is b for a, b in zip(streams.inputs, raw, strict=True))
    for out, handed in zip(seen, streams.handed):  # every tensor of the result is marked for the consumer
        assert {id(t) for t in handed} == {id(t) for t in dl_module._tensors(out)} and len(handed) == 3
    plain = list(DeviceLoader(raw, pipeline(0), device="cpu", prefetch=False))
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(seen, plain))  # same draws, same order
    assert list(DeviceLoader([], None, device="cpu")._iter_prefetch(FakeStreams())) == []


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("batch, match", [
    (3, "yielded a batch of type int"),
    ("images", "yielded a batch of type str"),
    (np.zeros((2, 3, 8, 8), np.uint8), "yielded a batch of type ndarray"),
    ([np.zeros((2, 3, 8, 8), np.uint8), torch.arange(2)],
     r"batch\[0\] \(image\) must be a torch.Tensor, got ndarray"),
    ((torch.zeros(2, 3, 8, 8), [0, 1]), r"batch\[1\] \(labels\) must be a torch.Tensor, got list"),
    ({"img": torch.zeros(2, 3, 8, 8)}, "needs an 'image' entry"),
    ((torch.zeros(2, 8, 8), torch.arange(2)),
     r"image batch \(B, C, H, W\).*grayscale batch \(B, H, W\) needs its channel"),
    ((torch.zeros(2, 3, 8, 8, dtype=torch.int32),), "must be a uint8 or floating image batch"),
    ((torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8)), r"fields=\('image', 'masks'\)"),
    ((), "empty tuple"),
])
def test_a_batch_of_the_wrong_kind_is_refused_naming_what_was_expected(batch, match):
    with pytest.raises((TypeError, ValueError), match=match):
        next(iter(DeviceLoader([batch], pipeline(0), device="cpu")))


def test_structure_mismatches_are_refused():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(TypeError, match="fields was given as a dict"):
        next(iter(DeviceLoader([(x,)], None, device="cpu", fields={"a": "image"})))
    with pytest.raises(TypeError, match="fields was given as a sequence"):
        next(iter(DeviceLoader([{"image": x}], None, device="cpu", fields=("image",))))
    with pytest.raises(ValueError, match="names 3 positions"):
        next(iter(DeviceLoader([(x, torch.arange(2))], None, device="cpu", fields=("image", "labels", None))))
    with pytest.raises(ValueError, match="mean and std have 2 values, but the images have 3 channels"):
        next(iter(DeviceLoader([x], None, device="cpu", mean=(0.5, 0.5), std=(0.5, 0.5))))


@pytest.mark.parametrize("loader", [5, torch.zeros(4, 3, 8, 8), "abc", {"image": torch.zeros(1)}])
def test_a_loader_that_is_not_an_iterable_of_batches_is_refused(loader):
    with pytest.raises(TypeError, match="loader must be a torch.utils.data.DataLoader or another iterable"):
        DeviceLoader(loader, None, device="cpu")


@pytest.mark.parametrize("device, error, match", [
    ("tpu", ValueError, r"device='tpu' is not a device name torch knows; allowed: cpu, cuda, cuda:N, mps, xpu, meta "
                        r"\(this machine has: cpu"),
    ("gpu", ValueError, r"device='gpu' is not a device name torch knows"),
    ("xla", ValueError, "device='xla': device type 'xla' is not supported"),
    (0, TypeError, r"device must be a device name such as 'cuda' or 'cpu', or a torch.device, got 0"),
    (None, TypeError, "device must be a device name"),
])
def test_a_device_that_does_not_exist_is_refused(device, error, match):
    with pytest.raises(error, match=match):
        DeviceLoader([], None, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:7", torch.device("cuda", 0)])
def test_cuda_without_cuda_is_refused_at_construction(device):
    with pytest.raises(ValueError, match=r"CUDA is not available on this machine \(torch.cuda.is_available\(\) is False"):
        DeviceLoader([], ga.Compose([ga.RandomRotation(10)]), device=device)


def test_a_cuda_index_past_the_device_count_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"'cuda:7': there is no such device, this machine has 1 CUDA device\(s\) \(cuda:0\)"):
        DeviceLoader([], None, device="cuda:7")


@pytest.mark.parametrize("bad", [lambda x: x, torch.nn.Identity(), "Compose", object()])
def test_a_pipeline_that_is_not_a_genaug_transform_is_refused(bad):
    expected = r"pipeline must be a genaug transform \(e.g. ga.Compose\(\[...\]\)\) or None"
    with pytest.raises(TypeError, match=expected) as info:
        DeviceLoader([], bad, device="cpu")
    assert ("ga.Compose([fn])" in str(info.value)) == callable(bad)


def test_a_callable_wrapped_in_compose_is_accepted():
    (out,) = DeviceLoader([images(2)], ga.Compose([lambda x: 1 - x]), device="cpu", dtype=torch.float32)
    torch.testing.assert_close(out, 1 - images(2).float() / 255)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(prefetch=1), TypeError, "prefetch must be a bool"),
    (dict(channels_last="yes"), TypeError, "channels_last must be a bool"),
    (dict(pin_memory=0), TypeError, "pin_memory must be a bool or None"),
    (dict(dtype=torch.int32), TypeError, "dtype must be None .* or a floating torch.dtype"),
    (dict(dtype="float32"), TypeError, "dtype must be None"),
    (dict(mean=(0.5,)), ValueError, "mean and std must be given together"),
    (dict(mean=(0.5, 0.5), std=(0.5,)), ValueError, "same length"),
    (dict(mean=(0.5,), std=(0.0,)), ValueError, "std values must be positive"),
    (dict(mean=("a",), std=(1.0,)), TypeError, "mean values must be finite numbers"),
    (dict(fields=("labels",)), ValueError, "exactly one entry 'image'"),
    (dict(fields=("image", "label")), ValueError, "every role must be one of 'image', 'masks'"),
    (dict(fields=("image", "masks", "masks")), ValueError, "names the role 'masks' more than once"),
    (dict(fields="image"), TypeError, "fields must be None, a sequence"),
    (dict(workers=2), TypeError, "unexpected keyword argument"),
])
def test_bad_arguments_fail_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        DeviceLoader([], None, device="cpu", **kwargs)


# ----------------------------------------------------------------------------- on a GPU
@pytest.mark.cuda
def test_cuda_prefetch_matches_no_prefetch_and_the_cpu():
    x = images(16, size=64)
    loader = DataLoader(TensorDataset(x, torch.arange(16)), batch_size=4, pin_memory=True)
    kw = dict(dtype=torch.float32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), channels_last=True)
    fast = [(a.clone(), b.clone()) for a, b in DeviceLoader(loader, pipeline(0, 48), device="cuda", **kw)]
    slow = list(DeviceLoader(loader, pipeline(0, 48), device="cuda", prefetch=False, **kw))
    cpu = list(DeviceLoader(loader, pipeline(0, 48), device="cpu", **kw))
    for (a, la), (b, lb), (c, lc) in zip(fast, slow, cpu):
        assert a.is_cuda and la.is_cuda and a.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b) and torch.equal(la, lb) and torch.equal(la.cpu(), lc)
        diff = (a.cpu() - c).abs()  # CPU and CUDA kernels round differently; a wrong draw differs by ~1
        assert diff.mean() < 1e-3 and diff.max() < 0.05


@pytest.mark.cuda
def test_cuda_batches_are_intact_when_the_consumer_reads_them_late():
    """A slow consumer stream (a long kernel before each read) still sees each batch as made, and prefetching
    changes nothing: the side stream's next batches never write into memory the consumer has yet to read."""
    x = images(64, size=64)
    loader = DataLoader(TensorDataset(x, torch.arange(64)), batch_size=8)
    ref = [a.clone() for a, _ in DeviceLoader(loader, pipeline(1, 64), device="cuda", prefetch=False)]
    sums = []
    for (a, _), _r in zip(DeviceLoader(loader, pipeline(1, 64), device="cuda"), ref):
        torch.cuda._sleep(2_000_000)  # a long kernel on the consumer's stream before it reads the batch
        sums.append(a.double().sum())
    torch.cuda.synchronize()
    assert all(torch.equal(s.cpu(), r.double().sum().cpu()) for s, r in zip(sums, ref))
