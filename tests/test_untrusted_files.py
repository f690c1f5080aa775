"""Untrusted pipeline files and checkpoints fail fast, clearly and with bounded memory.

Each forged input here made the old loaders spend seconds and hundreds of MB (YAML alias bomb),
crash with ``RecursionError`` (deep nesting) or try to allocate hundreds of GB (a checkpoint whose
metadata config asks for huge layers).
"""

import json
import subprocess
import sys
import textwrap
import time
import tracemalloc

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import genaug as ga
from genaug.generative import (SHIPPED, CheckpointError, Classifier, ClassifierConfig, ConditionalGAN,
                               GANConfig, checkpoint_info, load_model, save_checkpoint)
from genaug.generative import checkpoint as ckpt


# ----------------------------------------------------------------------------- pipelines
def alias_bomb(levels=9, fanout=10):
    """``a: &a [lol, ...]``, ``b: &b [*a, ...]``, ...: a few hundred bytes, fanout**levels values."""
    lines = ["a: &a [" + ", ".join(["lol"] * fanout) + "]"]
    names = "abcdefghijklmnop"
    for prev, name in zip(names[: levels - 1], names[1:levels]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * fanout) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_fails_fast_with_bounded_memory(tmp_path):
    text = alias_bomb()
    assert len(text) < 600  # ~1e9 values once expanded
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=r"bomb\.yaml.*MAX_PIPELINE_NODES=10000"):
            ga.load_pipeline(path)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 1.0, seconds
    assert peak < 20 * 2**20, peak


def test_recursive_yaml_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("&a [*a, *a]\n")
    with pytest.raises(ValueError, match=r"loop\.yaml.*MAX_PIPELINE_"):
        ga.load_pipeline(path)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_oversized_pipeline_file_is_refused_before_parsing(tmp_path, suffix):
    # a valid pipeline padded past the limit: the old loader read and built it
    text = json.dumps({"name": "RandomRotation", "args": {"degrees": 30}})
    path = tmp_path / f"big{suffix}"
    path.write_text(text + " " * (2**20 - len(text) + 1))  # serialization.MAX_PIPELINE_BYTES + 1
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=rf"big\{suffix}' is 1048577 bytes; the limit is MAX_PIPELINE_BYTES=1048576"):
        ga.load_pipeline(path)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "[" * 200 + "]" * 200,
                                  '{"a": ' * 50_000 + "1" + "}" * 50_000])
def test_deeply_nested_json_is_a_value_error(tmp_path, text):
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"deep\.json.*MAX_PIPELINE_DEPTH=64"):
        ga.load_pipeline(path)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x\n",
                                  "".join(" " * i + "a:\n" for i in range(300))])
def test_deeply_nested_yaml_is_a_fast_value_error(tmp_path, text):
    # PyYAML's scanner is quadratic in flow depth: the old loader spent many seconds on 200 KB
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"deep\.yaml.*MAX_PIPELINE_DEPTH=64"):
        ga.load_pipeline(path)
    assert time.perf_counter() - t0 < 1.0


def test_from_dict_bounds_nesting_built_in_python():
    cfg = {"name": "RandomRotation", "args": {"degrees": 30}}
    for _ in range(3000):  # the old _build recursed until RecursionError
        cfg = {"name": "Compose", "args": {"transforms": [cfg]}}
    with pytest.raises(ValueError, match="config is nested more than MAX_PIPELINE_DEPTH=64"):
        ga.from_dict(cfg)


def test_error_on_a_huge_config_is_short():
    shared = ["x"] * 10
    for _ in range(7):  # 1e8 values when expanded; the old message repr'd all of it
        shared = [shared] * 10
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as e:
        ga.from_dict({"nope": shared})
    assert time.perf_counter() - t0 < 1.0
    assert len(str(e.value)) < 500


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_nested_legit_pipelines_still_load_identically(tmp_path, suffix):
    aug = ga.Compose([ga.RandomResizedCrop(size=(16, 16), scale=(0.5, 1.0)),
                      ga.OneOf([ga.Compose([ga.RandomRotation(20), ga.RandomHorizontalFlip()]),
                                ga.ColorJitter(brightness=0.3)]),
                      ga.RandomGaussianBlur(kernel_size=3, sigma=(0.1, 1.0), p=0.5)], seed=7)
    loaded = ga.load_pipeline(ga.save_pipeline(aug, tmp_path / f"p{suffix}"))
    assert loaded.to_dict() == aug.to_dict()
    x = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(x), aug(x))


# ----------------------------------------------------------------------------- checkpoints
def _rewrite(path, tensors=None, **config_changes):
    """Rewrite ``path`` with ``tensors`` (default: its own) and config fields changed in the metadata."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path)) if tensors is None else tensors
    meta["config"] = json.dumps({**json.loads(meta["config"]), **config_changes})
    meta.pop("sha256")  # a forger would recompute it; leave it out so only the shape checks decide
    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.fixture
def tiny_classifier(tmp_path):
    """The shipped classifier's config shrunk to a ~2 KB checkpoint."""
    cfg = checkpoint_info("mnist-classifier")["config"]
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(**{**cfg, "width": 1, "feature_dim": 2}))
    return save_checkpoint(model, tmp_path / "tiny.safetensors")


@pytest.fixture
def no_tensor_reads(monkeypatch):
    """Fail the test if tensor data is read: mismatches must be found from the header alone."""
    def refuse(*args, **kwargs):
        raise AssertionError("tensor data was read before the header was checked")
    monkeypatch.setattr(ckpt, "load_file", refuse)


def test_forged_huge_config_is_refused_from_the_header(tiny_classifier, no_tensor_reads):
    path = _rewrite(tiny_classifier, width=100_000)
    assert path.stat().st_size < 4096
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"tiny\.safetensors.*shape mismatch.*"
                                              r"vs config \(100000, .*needs [\d,]+ values but the file holds only"):
        load_model(path)
    assert time.perf_counter() - t0 < 5.0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sets RLIMIT_AS")
def test_forged_huge_config_allocates_nothing(tiny_classifier):
    """In a fresh process capped at +4 GB of address space, the forged file gives a ValueError
    and RSS barely moves (the old loader died in the allocator)."""
    path = _rewrite(tiny_classifier, width=100_000)
    script = textwrap.dedent(f"""
        import resource, time, torch
        from genaug.generative import load_model
        torch.set_num_threads(1)
        vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")][0] * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 4 * 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        try:
            load_model({str(path)!r})
        except ValueError as e:
            print("VALUEERROR", str(e)[:300])
        print("SECONDS", time.perf_counter() - t0)
        print("RSS_MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert "weights do not match the config" in lines.get("VALUEERROR", ""), out.stdout
    assert float(lines["SECONDS"]) < 5.0, out.stdout
    assert float(lines["RSS_MB"]) < 200, out.stdout


def test_oversized_header_is_refused(tiny_classifier):
    # valid weights and config, but 9 MB of metadata: the old loader read it all
    with safe_open(str(tiny_classifier), framework="pt") as f:
        meta = dict(f.metadata())
    meta["provenance"] = json.dumps({"pad": "x" * 9 * 2**20})  # over ckpt.MAX_HEADER_BYTES = 8 MiB
    save_file(load_file(str(tiny_classifier)), str(tiny_classifier), metadata=meta)
    with pytest.raises(CheckpointError, match=r"tiny\.safetensors' declares a \d+-byte header; "
                                              r"the limit is MAX_HEADER_BYTES=8388608"):
        load_model(tiny_classifier)


def test_missing_tensor_is_named_from_the_header(tmp_path, no_tensor_reads):
    torch.manual_seed(0)
    gan = ConditionalGAN(GANConfig(g_width=4, d_width=4, latent_dim=8, num_classes=3))
    path = save_checkpoint(gan, tmp_path / "g.safetensors", inference_only=True)
    tensors = load_file(str(path))
    del tensors["generator.net.fc.bias"]
    _rewrite(path, tensors)
    with pytest.raises(CheckpointError, match=r"g\.safetensors.*missing \['generator\.net\.fc\.bias'\]"):
        load_model(path)


def test_wrong_shape_and_unexpected_tensor_are_named_from_the_header(tmp_path, no_tensor_reads):
    torch.manual_seed(0)
    gan = ConditionalGAN(GANConfig(g_width=4, d_width=4, latent_dim=8, num_classes=3))
    path = save_checkpoint(gan, tmp_path / "g.safetensors", inference_only=True)
    tensors = load_file(str(path))
    tensors["generator.net.out_conv.weight"] = torch.zeros(1, 4, 5, 5)  # (1, 4, 3, 3) expected
    tensors["evil.weight"] = torch.zeros(3)
    _rewrite(path, tensors)
    with pytest.raises(CheckpointError, match=r"unexpected \['evil\.weight'\].*shape mismatch.*"
                                              r"generator\.net\.out_conv\.weight: file \(1, 4, 5, 5\) "
                                              r"vs config \(1, 4, 3, 3\)"):
        load_model(path)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_models_load_bitwise_and_round_trip(tmp_path, name):
    model = load_model(name)
    stored = load_file(str(ckpt.shipped_path(name)))
    state = model.state_dict()
    assert sorted(state) == sorted(stored)
    assert all(state[k].dtype == stored[k].dtype and torch.equal(state[k], stored[k]) for k in stored)
    again = load_model(save_checkpoint(model, tmp_path / f"{name}.safetensors"))
    assert again.checkpoint_metadata["config"] == model.checkpoint_metadata["config"]
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in state.items())


@pytest.mark.parametrize("first_bytes", [b"\x80", b"PK"])
def test_a_safetensors_header_length_that_looks_like_pickle_or_zip_still_loads(tmp_path, tiny_classifier, first_bytes):
    """The header length is free-form: 1 in 256 checkpoints has 0x80 as its first byte (pickle's
    magic) and a few "PK" (zip's). The JSON header that follows decides, not those bytes alone."""
    tensors, meta = load_file(str(tiny_classifier)), dict(ckpt.read_header(tiny_classifier)[0])
    path = tmp_path / "lucky.safetensors"

    def header_length(pad: int) -> int:
        meta["padding"] = "x" * pad
        save_file(tensors, str(path), metadata=meta)
        return int.from_bytes(path.read_bytes()[:8], "little")

    base = header_length(0)
    target = int.from_bytes(first_bytes + b"\0", "little")  # 0x80 / 0x4b50 in the low bytes
    modulus = 1 << (8 * len(first_bytes))
    start = base + (target - base) % modulus
    for pad in range(start - base - 16, start - base + 16):  # the header is padded to 8 bytes
        if pad >= 0 and header_length(pad) % modulus == target:
            break
    else:
        pytest.fail(f"no padding made the header length start with {first_bytes!r}")
    model = load_model(path)
    assert all(torch.equal(v, tensors[k]) for k, v in model.state_dict().items())
    pickled = tmp_path / "model.safetensors"  # a real torch.save file under the wrong suffix is still refused
    torch.save(tensors, pickled, _use_new_zipfile_serialization=first_bytes == b"PK")
    with pytest.raises(CheckpointError, match="pickle / torch.save"):
        load_model(pickled)
