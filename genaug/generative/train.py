"""Trainers for the conditional VAE, conditional GAN and the reference classifier.

One loop for all three kinds: seeded, deterministic on CPU, a tqdm progress bar with the
losses, periodic checkpoints, exact ``resume`` (weights, optimizers, EMA, RNG state, step),
validation and early stopping on a validation metric. Arguments are checked before any work
(device present, output folder writable, data square with labels in range, a classifier as
``val_classifier``); a loss, validation metric or weight that turns NaN or infinite stops
training with :class:`TrainingDivergedError` before anything non-finite is written.

Files written to ``out`` (a folder):

* ``last.safetensors`` + ``last.json`` — resume state: tensors (model, optimizer moments,
  RNG state) in safetensors, everything else (step, optimizer hyper-parameters, best metric,
  running loss averages, history, configs) as JSON. The JSON is stored inside
  ``last.safetensors`` too (metadata ``train_state``, with the tensors' sha256), so that one
  atomic file is the commit point: ``last.json`` is a readable copy written after it, and a
  resume after an interruption between the two writes uses (and rewrites ``last.json`` from)
  ``last.safetensors``; the two are never mixed.
* ``best.safetensors`` — the model at the best validation metric (when validating).
* ``model.safetensors`` — the final model to use: the best one when validation ran,
  otherwise the last one; a VAE with ``prior="aggregate"`` gets its prior fitted here.

Validation metrics (higher is better):

* ``classifier``: accuracy on the held-out part of the training split.
* ``vae``: negative ELBO loss on the held-out images, negated.
* ``gan``: with ``val_classifier`` (a :class:`Classifier` or checkpoint), minus the Fréchet
  distance between classifier features of 1,000 generated and the held-out real images;
  without it the GAN is not validated.

Discriminator augmentation (GAN, ``TrainConfig.d_augment``): DiffAugment (Zhao et al. 2020).
The same differentiable augmentation (:func:`diff_augment`: ``color``, ``translation``,
``cutout``) is applied to every image the discriminator sees, real and fake, in the
discriminator step and in the generator step (gradients reach the generator through it), so
the discriminator cannot memorise a small training set. Its random parameters come from a
``torch.Generator`` seeded from (seed, step), never from the global RNG: a run without it is
unchanged and a resumed run is bit-exact.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from genaug._device import DEVICE_TYPES, available_devices, check_device
from genaug._folders import OutputFolderError, check_output_folder

from ..data.builtin import ImageTensorDataset, load_builtin
from .checkpoint import (CheckpointError, atomic_save_tensors, atomic_write_text, load_model,
                         read_checkpoint, read_header, save_checkpoint, tensor_digest)
from .models import (Classifier, ClassifierConfig, ConditionalGAN, ConditionalVAE, GANConfig,
                     VAEConfig)
from .models.common import ALLOWED_CHANNELS, ALLOWED_IMAGE_SIZES

KINDS = ("vae", "gan", "classifier")
CONFIGS = {"vae": VAEConfig, "gan": GANConfig, "classifier": ClassifierConfig}
D_AUGMENT_OPS = ("color", "translation", "cutout")


def parse_d_augment(policy: str | None) -> tuple[str, ...]:
    """Validate a discriminator-augmentation policy; returns its ops in order (``()`` for ``None``).

    A policy is a comma-separated list of distinct ops from :data:`D_AUGMENT_OPS`, applied
    in the order given, e.g. ``"translation,cutout"`` or ``"color,translation,cutout"``
    (DiffAugment's policies).
    """
    if policy is None:
        return ()
    if not isinstance(policy, str):
        raise ValueError(f"d_augment={policy!r} must be None or a comma-separated string of {D_AUGMENT_OPS}")
    ops = tuple(o.strip() for o in policy.split(","))
    bad = [o for o in ops if o not in D_AUGMENT_OPS]
    if bad or not ops or len(set(ops)) != len(ops):
        raise ValueError(f"d_augment={policy!r} is not allowed: expected distinct comma-separated ops from "
                         f"{D_AUGMENT_OPS} (e.g. 'translation,cutout' or 'color,translation,cutout')"
                         + (f"; unknown: {bad}" if bad else ""))
    return ops


def diff_augment(x: torch.Tensor, policy: str | tuple[str, ...] | None,
                 generator: torch.Generator | None = None, translation_ratio: float = 0.125,
                 cutout_ratio: float = 0.5, fill: float = 0.0) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020): batched random augmentation, differentiable in ``x``.

    Args:
        x: images (B, C, H, W), float, as the discriminator sees them (in [-1, 1]).
        policy: ops in order (see :func:`parse_d_augment`); ``None`` returns ``x`` unchanged.
        generator: CPU ``torch.Generator`` for the per-sample parameters (seeded = replayable).
        translation_ratio: shifts are integers in ``[-s, s]`` per axis, ``s = round(ratio * side)``;
            vacated pixels are set to ``fill``.
        cutout_ratio: side of the square set to ``fill`` (one per image, random centre, clipped
            at the border), as a fraction of the image side.
        fill: value of vacated and cut-out pixels: 0 (DiffAugment's zero padding, mid-grey in
            [-1, 1]) or e.g. -1 (black, the background of digit images).

    ``color`` adds a brightness offset in [-0.5, 0.5), scales saturation by [0, 2) (a no-op
    on one channel) and contrast by [0.5, 1.5), each per sample. Returns a tensor with the
    shape, dtype and device of ``x``.

    Example:
        >>> x = torch.zeros(4, 1, 28, 28, requires_grad=True)
        >>> y = diff_augment(x, "translation,cutout", torch.Generator().manual_seed(0))
        >>> y.shape, y.requires_grad
        (torch.Size([4, 1, 28, 28]), True)
    """
    ops = parse_d_augment(policy) if not isinstance(policy, tuple) else policy
    if not ops:
        return x
    b, _, h, w = x.shape
    dev, dt = x.device, x.dtype

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device=dev, dtype=dt)

    for op in ops:
        if op == "color":
            x = x + (rand(b, 1, 1, 1) - 0.5)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (rand(b, 1, 1, 1) * 2) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (rand(b, 1, 1, 1) + 0.5) + mean
        elif op == "translation":
            sh, sw = int(h * translation_ratio + 0.5), int(w * translation_ratio + 0.5)
            ty = torch.randint(-sh, sh + 1, (b, 1), generator=generator).to(dev)
            tx = torch.randint(-sw, sw + 1, (b, 1), generator=generator).to(dev)
            padded = F.pad(x, (sw, sw, sh, sh), value=fill)                      # fill outside
            rows = torch.arange(h, device=dev)[None, :] - ty + sh                # (B, H) source rows
            cols = torch.arange(w, device=dev)[None, :] - tx + sw                # (B, W) source cols
            bi = torch.arange(b, device=dev)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        elif op == "cutout":
            ch, cw = int(h * cutout_ratio + 0.5), int(w * cutout_ratio + 0.5)
            cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=generator).to(dev) - ch // 2
            cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=generator).to(dev) - cw // 2
            r = torch.arange(h, device=dev)[None, :, None]
            c = torch.arange(w, device=dev)[None, None, :]
            inside = (r >= cy) & (r < cy + ch) & (c >= cx) & (c < cx + cw)         # (B, H, W)
            x = x * (~inside).unsqueeze(1).to(dt) if fill == 0 else torch.where(inside.unsqueeze(1), fill, x)
        else:  # pragma: no cover - parse_d_augment rejects it
            raise ValueError(f"unknown d_augment op {op!r}")
    return x.contiguous()


def d_augment_generator(seed: int, step: int) -> torch.Generator:
    """The generator for the discriminator-augmentation parameters of ``step`` (depends on nothing else)."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 7_919 + 104_729) % 2**63)


"""Device types training runs on (``"auto"`` picks CUDA when available, else the CPU)."""
STATE_FORMAT = "genaug-train-state"
STATE_VERSION = "2"
"""Version 2: the whole resume state (``last.json``'s content) is inside ``last.safetensors``."""


class TrainingDivergedError(RuntimeError):
    """A training loss (or the weights) became NaN or infinite; nothing was written for that step."""


def _finite(name: str, value: Any, allowed: str) -> float:
    """``value`` as a float; ``TypeError`` if it is not a real number, ``ValueError`` if NaN / infinite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}) must be a number {allowed}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}={value!r} must be a finite number {allowed}")
    return v


def parse_device(device: str) -> torch.device | None:
    """Check the spelling of a training device (``None`` for ``"auto"``); ``ValueError`` naming it otherwise."""
    if device == "auto":
        return None
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or 'xpu'"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"device={device!r} is not a device; allowed: {allowed} "
                         f"(this machine has: {', '.join(available_devices())})") from None
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"device={device!r} cannot be trained on; allowed: {allowed} "
                         f"(this machine has: {', '.join(available_devices())})")
    return dev


#: TrainConfig fields a resumed run must share with the run it continues.
RESUME_FIXED = ("seed", "batch_size", "lr", "lr_d", "betas", "weight_decay", "val_fraction", "d_augment",
                "d_augment_fill")


def _json_value(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), for comparisons with a saved config."""
    return json.loads(json.dumps(value, default=str))


def resolve_device(device: str | torch.device) -> torch.device:
    """The device to train on (:func:`genaug._device.check_device`): ``"auto"`` is CUDA when available, else the CPU.

    Raises ``ValueError`` naming the device and the devices this machine has when the device
    is misspelled or not present (e.g. ``"cuda"`` on a machine without CUDA).
    """
    return check_device(device)


@dataclass
class TrainConfig:
    """Optimisation settings shared by all trainers.

    Args:
        steps: total optimisation steps (one step = one batch; for the GAN one D and one G update).
        batch_size: images per step.
        lr: learning rate (the generator's for a GAN).
        lr_d: discriminator learning rate (GAN); ``None`` = ``lr``.
        betas: Adam betas.
        weight_decay: Adam weight decay (classifier and VAE).
        seed: seeds weights, data order, latents and the validation split.
        ckpt_every: write ``last.*`` every this many steps (and at the end).
        val_every: validate every this many steps (0 = never).
        patience: stop after this many validations without improvement (0 = never stop early).
        val_fraction: fraction of each class held out from the data for validation.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        progress: show a tqdm progress bar.
        d_augment: GAN only: discriminator augmentation policy (DiffAugment), a comma-separated
            list of ``color``, ``translation``, ``cutout`` (e.g. ``"translation,cutout"``);
            ``None`` = off. See :func:`diff_augment`.
        d_augment_fill: value (in the discriminator's [-1, 1] range) of the pixels that
            ``translation`` vacates and ``cutout`` removes: 0 = DiffAugment's zero padding
            (mid-grey), -1 = black.
    """

    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-4
    lr_d: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    seed: int = 0
    ckpt_every: int = 500
    val_every: int = 250
    patience: int = 0
    val_fraction: float = 0.1
    device: str = "auto"
    progress: bool = True
    d_augment: str | None = None
    d_augment_fill: float = 0.0

    def __post_init__(self) -> None:
        if self.d_augment is not None:
            self.d_augment = ",".join(parse_d_augment(self.d_augment))  # validated, canonical spelling
        for name in ("steps", "batch_size", "ckpt_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive int")
        for name in ("val_every", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}={v!r} must be an int >= 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed={self.seed!r} must be an int")
        if not -1.0 <= _finite("d_augment_fill", self.d_augment_fill, "in [-1, 1]") <= 1.0:
            raise ValueError(f"d_augment_fill={self.d_augment_fill!r} must be in [-1, 1]")
        if not 0.0 <= _finite("val_fraction", self.val_fraction, "in [0, 1)") < 1.0:
            raise ValueError(f"val_fraction={self.val_fraction!r} must be in [0, 1)")
        for name in ("lr", "lr_d"):
            v = getattr(self, name)
            if v is not None and _finite(name, v, "> 0" + (" (or None = lr)" if name == "lr_d" else "")) <= 0:
                raise ValueError(f"{name}={v!r} must be a finite number > 0")
        betas = self.betas
        if (isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2
                or any(isinstance(b, bool) or not isinstance(b, numbers.Real) for b in betas)):
            raise TypeError(f"betas={betas!r} must be two numbers (beta1, beta2), each in [0, 1)")
        self.betas = tuple(float(b) for b in betas)  # type: ignore[assignment]
        if not all(0.0 <= b < 1.0 for b in self.betas):  # NaN fails the comparison too
            raise ValueError(f"betas={betas!r} must be two finite numbers (beta1, beta2), each in [0, 1)")
        if _finite("weight_decay", self.weight_decay, ">= 0") < 0:
            raise ValueError(f"weight_decay={self.weight_decay!r} must be a finite number >= 0")
        if isinstance(self.device, torch.device):
            self.device = str(self.device)
        if not isinstance(self.device, str):
            raise TypeError(f"device={self.device!r} must be a str such as 'auto', 'cpu', 'cuda' or 'cuda:1'")
        parse_device(self.device)  # a known device string (whether this machine has it is checked by train)
        if not isinstance(self.progress, bool):
            raise TypeError(f"progress={self.progress!r} must be a bool")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild from ``asdict`` output (e.g. a checkpoint's provenance ``train_config``).

        Fields missing from ``data`` (written by an older genaug, e.g. ``d_augment``) take their
        defaults; unknown keys are ignored.
        """
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: (tuple(v) if k == "betas" else v) for k, v in data.items() if k in names})


@dataclass
class TrainResult:
    """What :func:`train` returns: the final model and where things were written."""

    model: nn.Module
    out: Path
    step: int
    best_metric: float | None
    best_step: int | None
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)


def split_train_val(ds: ImageTensorDataset, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class seeded split of indices into (train, val); ``val_fraction`` of each class is val."""
    g = torch.Generator().manual_seed(seed + 7919)
    tr, va = [], []
    for c in torch.unique(ds.labels).tolist():
        idx = torch.nonzero(ds.labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(val_fraction * len(idx)))
        va.append(idx[:k])
        tr.append(idx[k:])
    return torch.sort(torch.cat(tr)).values, torch.sort(torch.cat(va)).values


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the batch used at ``step``: a seeded permutation per epoch (drop-last).

    Depends only on (n, batch_size, step, seed), so a resumed run sees the same batches.
    """
    per_epoch = max(n // batch_size, 1)
    epoch, i = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return perm[i * batch_size:(i + 1) * batch_size]


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` (N, D) and ``b`` (M, D)."""
    a, b = a.double(), b.double()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = torch.cov(a.T), torch.cov(b.T)
    tr_sqrt = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
    return float((mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * tr_sqrt)


def _build_model(kind: str, cfg: Any) -> nn.Module:
    return {"vae": ConditionalVAE, "gan": ConditionalGAN, "classifier": Classifier}[kind](cfg)


def _optimizers(kind: str, model: nn.Module, tc: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    if kind == "gan":
        return {"g": torch.optim.Adam(model.generator.parameters(), lr=tc.lr, betas=tc.betas),
                "d": torch.optim.Adam(model.discriminator.parameters(), lr=tc.lr_d or tc.lr, betas=tc.betas)}
    return {"main": torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay)}


def _optimizer_tensors(opts: dict[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split optimizer state dicts into tensors (for safetensors) and JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, Any] = {}
    for name, opt in opts.items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, st in sd["state"].items():
            for key, val in st.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"optim.{name}.{pid}.{key}"] = val
                else:
                    scalars.setdefault(str(pid), {})[key] = val
        rest[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, rest


def _restore_optimizers(opts: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor],
                        rest: dict[str, Any], device: torch.device) -> None:
    for name, opt in opts.items():
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optim.{name}."
        for k, v in tensors.items():
            if k.startswith(prefix):
                pid, key = k[len(prefix):].split(".", 1)
                state.setdefault(int(pid), {})[key] = v if key == "step" else v.to(device)
        for pid, sc in rest[name]["scalars"].items():
            state.setdefault(int(pid), {}).update(sc)
        opt.load_state_dict({"state": state, "param_groups": rest[name]["param_groups"]})


class _Trainer:
    """Per-kind step and validation logic."""

    def __init__(self, kind: str, model: nn.Module, opts: dict[str, torch.optim.Optimizer],
                 device: torch.device, val_images: torch.Tensor, val_labels: torch.Tensor,
                 val_classifier: Classifier | None, d_augment: str | None = None, seed: int = 0,
                 d_augment_fill: float = 0.0) -> None:
        self.kind, self.model, self.opts, self.device = kind, model, opts, device
        self.d_augment, self.seed, self.d_augment_fill = parse_d_augment(d_augment), seed, float(d_augment_fill)
        self.val_images, self.val_labels = val_images, val_labels
        self.val_classifier = val_classifier
        self._val_feats: torch.Tensor | None = None
        self.step_count = 0  # set by train() (also after resume)

    def step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        m = self.model
        m.train()
        if self.kind == "classifier":
            loss = F.cross_entropy(m(x), y)
            self.opts["main"].zero_grad(set_to_none=True)
            loss.backward()
            self.opts["main"].step()
            return {"loss": float(loss.detach())}
        if self.kind == "vae":
            loss, parts = m.loss(x, y)
            self.opts["main"].zero_grad(set_to_none=True)
            loss.backward()
            self.opts["main"].step()
            return {"loss": float(loss.detach()), **parts}
        # GAN: one discriminator and one generator update on the same fake batch.
        real = x * 2 - 1
        z = torch.randn(x.shape[0], m.config.latent_dim, device=self.device)
        fake = m.generator(z, y)
        if self.d_augment:  # DiffAugment: independent draws for real / fake (D step) and fake (G step)
            ga = d_augment_generator(self.seed, self.step_count)
            aug = lambda t: diff_augment(t, self.d_augment, ga, fill=self.d_augment_fill)  # noqa: E731
        else:
            aug = lambda t: t  # noqa: E731
        real_d, fake_d = aug(real), aug(fake.detach())
        d_loss = m.d_loss(m.discriminator(real_d, y), m.discriminator(fake_d, y))
        pen = m.penalty(real_d, fake_d, y)  # R1 / GP on what D sees (as StyleGAN2-ADA)
        self.opts["d"].zero_grad(set_to_none=True)
        (d_loss + pen).backward()
        self.opts["d"].step()
        g_loss = m.g_loss(m.discriminator(aug(fake), y))
        ms = m.mode_seeking_loss(fake, z, y)
        self.opts["g"].zero_grad(set_to_none=True)
        (g_loss + ms).backward()
        self.opts["g"].step()
        m.update_ema(self.step_count)
        self.step_count += 1
        out = {"d": float(d_loss.detach()), "g": float(g_loss.detach())}
        if m.config.penalty != "none":
            out["pen"] = float(pen.detach())
        if m.config.mode_seeking:
            out["ms"] = float(ms.detach())
        return out

    def can_validate(self) -> bool:
        if self.val_images.shape[0] == 0:
            return False
        return self.kind != "gan" or self.val_classifier is not None

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Returns {"metric": higher-is-better, ...}; runs with a forked RNG (no side effects)."""
        m = self.model
        with torch.random.fork_rng(devices=[] if self.device.type == "cpu" else [self.device]):
            torch.manual_seed(12345)
            m.eval()
            x = self.val_images.to(self.device).float() / 255
            y = self.val_labels.to(self.device)
            try:
                if self.kind == "classifier":
                    acc = float((m.predict(x) == y).float().mean())
                    return {"metric": acc, "val_acc": acc}
                if self.kind == "vae":
                    losses = [float(m.loss(x[i:i + 500], y[i:i + 500] if m.config.num_classes else None)[0])
                              * min(500, x.shape[0] - i) for i in range(0, x.shape[0], 500)]
                    val = sum(losses) / x.shape[0]
                    return {"metric": -val, "val_loss": val}
                clf = self.val_classifier
                assert clf is not None
                m.refresh_ema_stats()
                if self._val_feats is None:
                    self._val_feats = clf.features(x).cpu()
                n = max(1000, x.shape[0])
                g = torch.Generator().manual_seed(2024)
                labels = torch.arange(n) % m.config.num_classes if m.config.num_classes else None
                fake = torch.cat([m.sample(min(500, n - i), labels=None if labels is None else labels[i:i + 500],
                                           generator=g) for i in range(0, n, 500)])
                fd = frechet_distance(clf.features(fake).cpu(), self._val_feats)
                out = {"metric": -fd, "val_fd": fd}
                if labels is not None:
                    out["val_acc"] = float((clf.predict(fake).cpu() == labels).float().mean())
                return out
            finally:
                m.train()


def _provenance(kind: str, data_name: str, split: str, n_train: int, n_val: int, step: int,
                tc: TrainConfig, command: str | None) -> dict[str, Any]:
    from .checkpoint import _genaug_version

    return {"kind": kind, "data": data_name, "split": split, "n_train": n_train, "n_val": n_val,
            "steps": step, "seed": tc.seed, "command": command or "(python API)",
            "train_config": asdict(tc), "genaug_version": _genaug_version(),
            "torch_version": torch.__version__, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


_DEMO_ONLY_DATA = {"digits": "8x8", "photos": "427x640, not square"}


def _check_trainable_data(ds: ImageTensorDataset, data_name: str) -> None:
    """Non-empty, square images of a size and channel count the models support."""
    if len(ds) == 0:
        raise ValueError(f"data={data_name!r} is empty (0 images); training needs at least one image")
    _, c, h, w = ds.images.shape
    if h != w or h not in ALLOWED_IMAGE_SIZES or c not in ALLOWED_CHANNELS:
        hint = ""
        if data_name in _DEMO_ONLY_DATA:
            hint = (f"; the built-in {data_name!r} images ({_DEMO_ONLY_DATA[data_name]}) are for the transform "
                    f"demos and cannot be trained on")
        sides = f"{', '.join(map(str, ALLOWED_IMAGE_SIZES[:-1]))} or {ALLOWED_IMAGE_SIZES[-1]}"
        raise ValueError(f"data={data_name!r} has {c}x{h}x{w} images; training needs square images of side {sides} "
                         f"with {' or '.join(map(str, ALLOWED_CHANNELS))} channels, e.g. 'mnist5k', "
                         f"'imagefolder:PATH' or 'export:PATH' of such images{hint}")


def _check_out_writable(out: Path) -> None:
    """Create ``out`` and prove it writable (:func:`genaug._folders.check_output_folder`) before training."""
    try:
        check_output_folder(out, "out")
    except OutputFolderError as e:
        if e.os_error is None:
            raise ValueError(f"out={str(out)!r} is a file, not a folder; give a folder to write the checkpoints "
                             "to") from None
        raise ValueError(f"out={str(out)!r} is not a writable folder ({e.os_error.strerror or e.os_error}); give a "
                         f"folder you can write to") from None


def _load_val_classifier(val_classifier: Any, channels: int, image_size: int) -> Classifier:
    """The validation classifier (a Classifier, a checkpoint path or a shipped name), checked against the data."""
    what = (f"a {type(val_classifier).__name__} object" if isinstance(val_classifier, nn.Module)
            else f"val_classifier={str(val_classifier)!r}")
    clf = val_classifier if isinstance(val_classifier, nn.Module) else load_model(val_classifier)
    got = getattr(clf, "kind", type(clf).__name__)
    if not isinstance(clf, Classifier):
        raise ValueError(f"{what} is a {got} model, not a classifier; val_classifier must be a Classifier "
                         f"checkpoint (e.g. 'mnist-classifier' or a 'genaug train classifier' model.safetensors)")
    if (clf.config.image_size, clf.config.channels) != (image_size, channels):
        raise ValueError(f"{what} takes {clf.config.channels}x{clf.config.image_size}x{clf.config.image_size} "
                         f"images but the data is {channels}x{image_size}x{image_size}; give a classifier trained "
                         f"on images like the data")
    return clf


def _require_resume_state(out: Path) -> None:
    last_st, last_js = out / "last.safetensors", out / "last.json"
    if not last_st.exists():
        if last_js.exists():
            raise CheckpointError(f"cannot resume: {last_js} exists but {last_st} (weights, optimizer and RNG "
                                  f"state) is missing; train again without --resume")
        raise FileNotFoundError(f"resume=True but {last_st} does not exist; train without --resume first")


def _read_resume_state(out: Path, log: Callable[[str], None]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The resume state (JSON part, tensors) of ``out``; never a mix of two checkpoints.

    ``last.safetensors`` holds the tensors and, in its metadata, the JSON state written with them
    (one file, one commit point); an out-of-date or missing ``last.json`` (an interruption between
    the two writes) is rewritten from it. A state written before that (no JSON inside) is paired
    with ``last.json`` only if the optimizer step counts in the tensors equal its step.
    """
    last_st, last_js = out / "last.safetensors", out / "last.json"
    _require_resume_state(out)
    header, _ = read_header(last_st)
    # States written before the digest was recorded have none: those are cross-checked below instead.
    tensors, meta = read_checkpoint(last_st, verify="sha256" in header)
    if meta.get("format") != STATE_FORMAT:
        raise CheckpointError(f"cannot resume: {last_st} is not a genaug training state "
                              f"(format={meta.get('format')!r}, expected {STATE_FORMAT!r})")
    try:
        on_disk = json.loads(last_js.read_text()) if last_js.exists() else None
    except (OSError, ValueError):
        on_disk = None
    if "train_state" in meta:
        js = json.loads(meta["train_state"])
        if on_disk != js:
            old = on_disk["state"].get("step") if isinstance(on_disk, dict) and "state" in on_disk else None
            log(f"{last_js} was {'missing or unreadable' if on_disk is None else f'out of date (step {old})'}, "
                f"left by an interrupted checkpoint write; rewrote it from {last_st} (step {js['state']['step']})")
            atomic_write_text(json.dumps(js, indent=1, default=str), last_js)
        return js, tensors
    # A state written by an older genaug: last.json holds the non-tensor part. Check that they match.
    if on_disk is None:
        raise CheckpointError(f"cannot resume: {last_js} is missing or unreadable, and {last_st} was written by an "
                              f"older genaug that keeps the rest of the state only there; train again without --resume")
    step = on_disk["state"]["step"]
    counts = sorted({int(v) for k, v in tensors.items() if k.startswith("optim.") and k.endswith(".step")})
    if counts and counts != [step]:
        raise CheckpointError(f"cannot resume: {last_st} holds optimizer state after {counts[-1]} steps but "
                              f"{last_js} says step {step}: the two files come from different checkpoints (an "
                              f"interrupted write); train again without --resume")
    return on_disk, tensors


def _diverged(kind: str, step: int, what: str, tc: TrainConfig, last_st: Path, saved: int | None) -> str:
    where = (f"{last_st} still holds step {saved}" if saved is not None
             else "no checkpoint was written")
    lrs = f"lr={tc.lr}" + (f", lr_d={tc.lr_d}" if tc.lr_d is not None else "")
    return (f"training diverged: the {kind}'s {what} at step {step} is not finite (NaN or infinity) with {lrs}; "
            f"stopped without writing non-finite weights ({where}); lower the learning rate or change the "
            f"model settings and train again")


def _check_finite_weights(model: nn.Module, step: int, tc: TrainConfig, last_st: Path, saved: int | None) -> None:
    bad = [k for k, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise TrainingDivergedError(_diverged(model.kind, step, f"weights ({', '.join(bad[:3])}"
                                              f"{', ...' if len(bad) > 3 else ''})", tc, last_st, saved))


def train(kind: str, data: str | ImageTensorDataset | torch.utils.data.Dataset, out: str | Path,
          model_config: Any = None, train_config: TrainConfig | None = None, *, split: str = "train",
          resume: bool = False, val_classifier: str | Path | Classifier | None = None,
          command: str | None = None, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train a model and write checkpoints to ``out``.

    Args:
        kind: ``"vae"``, ``"gan"`` or ``"classifier"``.
        data: a built-in name (``"mnist5k"``), ``"imagefolder:PATH"`` or a dataset.
        out: output folder (created).
        model_config: the model's config dataclass (or a dict of its fields); image size,
            channels and classes default to the data's.
        train_config: a :class:`TrainConfig` (defaults if ``None``).
        split: which split of a built-in dataset to train on (validation is carved from it).
        resume: continue from ``out/last.*`` exactly (same result as an uninterrupted run).
        val_classifier: GAN only: a classifier (or checkpoint path / shipped name) whose
            features score generated samples for validation and early stopping.
        command: the command line to record in the provenance.
        log: where to send one-line messages (default: stderr).

    Returns:
        :class:`TrainResult` with the final model (the best one if validation ran).

    Raises:
        ValueError / TypeError: a bad argument (device this machine lacks, unwritable ``out``,
            data that is empty, not square or has labels outside ``0..num_classes-1``, a
            ``val_classifier`` that is not a classifier for such images, ...), before any step.
        FileNotFoundError / CheckpointError: ``resume`` without a usable ``out/last.safetensors``.
        TrainingDivergedError: a loss, validation metric or weight became NaN or infinite;
            nothing non-finite was written.

    Example:
        >>> from genaug.generative import train, TrainConfig, VAEConfig
        >>> res = train("vae", "mnist5k", "runs/vae", VAEConfig(), TrainConfig(steps=2000))  # doctest: +SKIP
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not allowed; allowed: {KINDS}")
    tc = train_config or TrainConfig()
    if not isinstance(tc, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig or None, got {type(tc).__name__}")
    if tc.d_augment is not None and kind != "gan":
        raise ValueError(f"d_augment={tc.d_augment!r} is only used for kind='gan' (there is no discriminator "
                         f"in kind={kind!r})")
    if val_classifier is not None and kind != "gan":
        raise ValueError("val_classifier is only used for kind='gan'")
    log = log or (lambda s: print(s, file=sys.stderr))
    out = Path(out)
    device = resolve_device(tc.device)  # a misspelled or absent device fails before any work
    if not isinstance(data, (str, ImageTensorDataset)) and hasattr(data, "__len__") and len(data) == 0:
        raise ValueError(f"data (a {type(data).__name__}) is empty (0 images); training needs at least one image")
    ds = load_builtin(data, split) if not isinstance(data, ImageTensorDataset) else data
    data_name = data if isinstance(data, str) else ds.name
    _check_trainable_data(ds, data_name)
    _, c, h, w = ds.images.shape
    defaults = {"image_size": h, "channels": c,
                "num_classes": ds.num_classes if kind != "gan" or ds.num_classes > 1 else 0}
    cfg_cls = CONFIGS[kind]
    if model_config is None:
        model_config = cfg_cls(**defaults)
    elif isinstance(model_config, dict):
        model_config = cfg_cls.from_dict({**defaults, **model_config})
    if not isinstance(model_config, cfg_cls):
        raise TypeError(f"model_config for kind={kind!r} must be a {cfg_cls.__name__} or dict")
    if (model_config.image_size, model_config.channels) != (h, c):
        raise ValueError(f"model_config has image_size={model_config.image_size}, channels={model_config.channels} "
                         f"but the data is {c}x{h}x{w}")
    nc = model_config.num_classes
    if nc:
        lo, hi = int(ds.labels.min()), int(ds.labels.max())
        if lo < 0 or hi >= nc:
            raise ValueError(f"data has labels in {lo}..{hi} but num_classes={nc}: class labels must be ints in "
                             f"0..{nc - 1}")

    torch.manual_seed(tc.seed)
    model = _build_model(kind, model_config).to(device)
    opts = _optimizers(kind, model, tc)
    tr_idx, va_idx = split_train_val(ds, tc.val_fraction, tc.seed)
    if len(tr_idx) == 0:
        raise ValueError(f"no training images are left after holding out val_fraction={tc.val_fraction} of each "
                         f"class from the {len(ds)} images; lower val_fraction or give more data")
    train_x, train_y = ds.images[tr_idx], ds.labels[tr_idx]
    clf = None
    if val_classifier is not None:
        clf = _load_val_classifier(val_classifier, c, h)
        clf = clf.to(device).eval()
    trainer = _Trainer(kind, model, opts, device, ds.images[va_idx], ds.labels[va_idx], clf,
                       d_augment=tc.d_augment, seed=tc.seed, d_augment_fill=tc.d_augment_fill)
    conditional = model_config.num_classes > 0

    state: dict[str, Any] = {"step": 0, "best_metric": None, "best_step": None, "bad_evals": 0, "history": [],
                             "stopped_early": False, "running": {}}
    last_st, last_js = out / "last.safetensors", out / "last.json"
    if resume:
        _require_resume_state(out)
    _check_out_writable(out)  # before the first step, not at the first checkpoint
    if resume:
        js, tensors = _read_resume_state(out, log)
        if js["kind"] != kind or js["model_config"] != model_config.to_dict():
            raise CheckpointError(f"cannot resume: {last_st} was written for kind={js['kind']!r} with config "
                                  f"{js['model_config']}, not kind={kind!r} with {model_config.to_dict()}")
        # what decides the batches, the split and each update must be the run's own (steps may grow);
        # the optimizer state would silently keep the old lr / betas / weight decay otherwise
        saved_tc, now_tc = js["train_config"], asdict(tc)
        defaults = {"d_augment": None, "d_augment_fill": 0.0}
        differ = [f"{k}={now_tc[k]!r} (the run has {saved_tc.get(k, defaults.get(k))!r})" for k in RESUME_FIXED
                  if _json_value(saved_tc.get(k, defaults.get(k))) != _json_value(now_tc[k])]
        if differ:
            raise CheckpointError(f"cannot resume {last_st}: {', '.join(differ)}; resume with the run's values "
                                  "(only steps, ckpt_every, val_every, patience, device and progress may change), "
                                  "or train anew into another --out")
        model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        model.load_state_dict(model_sd, strict=True)
        _restore_optimizers(opts, tensors, js["optimizers"], device)
        torch.set_rng_state(tensors["rng.cpu"])
        if device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
        state.update(js["state"])
        state.setdefault("running", {})  # absent from states written before it was saved
        log(f"resumed {kind} from {last_st} at step {state['step']}")
    saved_step = [state["step"] if resume else None]

    def save_last() -> None:
        _check_finite_weights(model, state["step"], tc, last_st, saved_step[0])
        opt_t, opt_rest = _optimizer_tensors(opts)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update(opt_t)
        tensors["rng.cpu"] = torch.get_rng_state()
        if device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
        prov = _provenance(kind, data_name, split, len(tr_idx), len(va_idx), state["step"], tc, command)
        digest = tensor_digest(tensors)
        js = {"format": STATE_FORMAT, "version": STATE_VERSION, "kind": kind, "model_config": model_config.to_dict(),
              "train_config": asdict(tc), "optimizers": opt_rest, "state": state, "provenance": prov,
              "tensors_sha256": digest}
        # One commit point: the tensors and the rest of the state go into last.safetensors together
        # (the JSON in its metadata); last.json is a readable copy written after it. An interruption
        # between the two leaves an out-of-date last.json, which resume ignores and rewrites.
        atomic_save_tensors(tensors, last_st, {"format": STATE_FORMAT, "state_version": STATE_VERSION,
                                               "kind": kind, "step": str(state["step"]), "sha256": digest,
                                               "train_state": json.dumps(js, default=str)})
        atomic_write_text(json.dumps(js, indent=1, default=str), last_js)
        saved_step[0] = state["step"]

    from tqdm.auto import tqdm

    bar = tqdm(total=tc.steps, initial=state["step"], desc=f"train {kind}", disable=not tc.progress,
               dynamic_ncols=True, file=sys.stderr)
    running: dict[str, float] = state["running"]  # saved with the state: a resumed history equals a full one
    try:
        while state["step"] < tc.steps and not state["stopped_early"]:
            trainer.step_count = state["step"]
            idx = batch_indices(len(tr_idx), tc.batch_size, state["step"], tc.seed)
            x = train_x[idx].to(device).float() / 255
            y = train_y[idx].to(device) if conditional else None
            losses = trainer.step(x, y)
            state["step"] += 1
            s = state["step"]
            bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
            if bad:
                raise TrainingDivergedError(_diverged(kind, s, f"training loss ({bad})", tc, last_st, saved_step[0]))
            for k, v in losses.items():
                running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
            if tc.val_every and s % tc.val_every == 0 and trainer.can_validate():
                val = trainer.validate()
                if not math.isfinite(val["metric"]):
                    raise TrainingDivergedError(_diverged(kind, s, f"validation metric ({val['metric']})", tc, last_st,
                                                          saved_step[0]))
                state["history"].append({"step": s, **{k: round(v, 6) for k, v in running.items()}, **val})
                if state["best_metric"] is None or val["metric"] > state["best_metric"]:
                    state["best_metric"], state["best_step"], state["bad_evals"] = val["metric"], s, 0
                    _check_finite_weights(model, s, tc, last_st, saved_step[0])
                    save_checkpoint(model, out / "best.safetensors",
                                    _provenance(kind, data_name, split, len(tr_idx), len(va_idx), s, tc, command))
                else:
                    state["bad_evals"] += 1
                    if tc.patience and state["bad_evals"] >= tc.patience:
                        state["stopped_early"] = True
                        log(f"early stopping at step {s}: no improvement for {tc.patience} validations "
                            f"(best {state['best_metric']:.4f} at step {state['best_step']})")
                bar.write(f"step {s}: " + ", ".join(f"{k}={v:.4f}" for k, v in val.items()), file=sys.stderr)
            if s % tc.ckpt_every == 0 or s == tc.steps or state["stopped_early"]:
                save_last()
    finally:
        bar.close()
    _check_finite_weights(model, state["step"], tc, last_st, saved_step[0])

    final = model
    if kind == "gan":
        model.refresh_ema_stats()
    if state["best_step"] is not None and (out / "best.safetensors").exists():
        final = load_model(out / "best.safetensors", device=device)
    prov = _provenance(kind, data_name, split, len(tr_idx), len(va_idx), state["step"], tc, command)
    prov["selected_step"] = state["best_step"] if final is not model else state["step"]
    if kind == "vae" and final.config.prior == "aggregate":
        final.fit_prior(train_x, train_y if conditional else None)
        prov["prior_fit"] = f"aggregate posterior of the {len(tr_idx)} training images (validation images excluded)"
        log(f"fitted the aggregate prior on {len(tr_idx)} training images")
    save_checkpoint(final, out / "model.safetensors", prov)
    final.eval()
    return TrainResult(final, out, state["step"], state["best_metric"], state["best_step"],
                       state["stopped_early"], state["history"])
