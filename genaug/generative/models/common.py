"""Shared building blocks and validation for genaug's generative models.

Shape comments use ``B`` for batch, ``C`` for channels, ``H``/``W`` for image size,
``Z`` for latent size and ``K`` for the number of classes.
"""

from __future__ import annotations

import itertools
import math
import numbers
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, fields
from typing import Any, Iterator

import torch
from torch import nn

ALLOWED_IMAGE_SIZES = (28, 32, 64)
ALLOWED_CHANNELS = (1, 3)


_FIELD_KINDS = {"int": "an int", "float": "a finite number", "bool": "a bool (True or False)", "str": "a str"}


def check_field_types(cfg: Any) -> None:
    """Check every field of config dataclass ``cfg`` against its declared type.

    ``bool`` fields must be ``bool``; ``int`` fields integers (not ``bool``; NumPy integers are
    turned into ``int``); ``float`` fields real numbers (``int`` allowed, NumPy floats turned
    into ``float``) that are finite; ``str`` fields ``str``. Raises ``TypeError`` (wrong type)
    or ``ValueError`` (NaN / infinity) naming the class, the field, the value and what is allowed.

    Example:
        >>> from genaug.generative import VAEConfig
        >>> VAEConfig(beta=float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: VAEConfig.beta=nan must be a finite number (got NaN or infinity)
    """
    name = type(cfg).__name__
    for f in fields(cfg):
        declared = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if declared not in _FIELD_KINDS:
            continue
        v = getattr(cfg, f.name)
        wrong = TypeError(f"{name}.{f.name}={v!r} ({type(v).__name__}) must be {_FIELD_KINDS[declared]}")
        if declared == "bool":
            if not isinstance(v, bool):
                raise wrong
        elif declared == "int":
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise wrong
            setattr(cfg, f.name, int(v))
        elif declared == "float":
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise wrong
            if not isinstance(v, (int, float)):
                v = float(v)
                setattr(cfg, f.name, v)
            if not math.isfinite(v):
                raise ValueError(f"{name}.{f.name}={v!r} must be a finite number (got NaN or infinity)")
        elif not isinstance(v, str):
            raise wrong


def validate_common_config(cfg: Any) -> None:
    """Check field types (:func:`check_field_types`) and the fields every model config shares.

    Raises ``TypeError`` / ``ValueError`` naming the field, the value and what is allowed.
    """
    check_field_types(cfg)
    if cfg.image_size not in ALLOWED_IMAGE_SIZES:
        raise ValueError(f"image_size={cfg.image_size!r} is not supported; allowed: {ALLOWED_IMAGE_SIZES}")
    if cfg.channels not in ALLOWED_CHANNELS:
        raise ValueError(f"channels={cfg.channels!r} is not supported; allowed: {ALLOWED_CHANNELS}")
    if not isinstance(cfg.num_classes, int) or cfg.num_classes < 0:
        raise ValueError(f"num_classes={cfg.num_classes!r} must be an int >= 0 (0 = unconditional)")
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if f.name.endswith("width") or f.name == "latent_dim":
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{f.name}={v!r} must be a positive int")


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build config dataclass ``cls`` from a dict, rejecting unknown keys."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; allowed: {sorted(known)}")
    return cls(**data)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return asdict(cfg)


@contextmanager
def training_mode(module: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Put ``module`` in train (``True``) or eval (``False``) mode for a block, then restore it.

    In eval mode on a CUDA device, cuDNN is also held to deterministic algorithms (and no
    autotuning) for the block, then its flags are restored: otherwise the same seed need not give
    the same samples twice, because cuDNN may pick a transposed-convolution algorithm whose sums
    run in a varying order (seen on an H100: 2 to 4 distinct outputs in 6 seeded calls). The flags
    are process-wide, as PyTorch has them: :func:`deterministic_cudnn` shares one hold among
    overlapping blocks.

    Example:
        >>> net = nn.BatchNorm1d(2).train()
        >>> with training_mode(net, False):
        ...     net.training
        False
        >>> net.training
        True
    """
    was = module.training
    module.train(training)
    hold = deterministic_cudnn() if not training and on_cuda(module) else nullcontext()
    try:
        with hold:
            yield module
    finally:
        module.train(was)


_CUDNN_LOCK = threading.Lock()
_cudnn_holders = 0
_cudnn_saved: tuple[bool, bool] = (False, False)


@contextmanager
def deterministic_cudnn() -> Iterator[None]:
    """cuDNN held to deterministic algorithms, without autotuning, for a block.

    The flags are process-wide, so blocks share one hold: the first to enter saves the user's
    flags, the last to leave restores them. Overlapping blocks in several threads then cannot
    leave the flags pinned (thread A saves, thread B saves A's pinned values, A restores, B
    "restores" the pinned ones).
    """
    global _cudnn_holders, _cudnn_saved
    cudnn = torch.backends.cudnn
    with _CUDNN_LOCK:
        if _cudnn_holders == 0:
            _cudnn_saved = (cudnn.deterministic, cudnn.benchmark)
            cudnn.deterministic, cudnn.benchmark = True, False
        _cudnn_holders += 1
    try:
        yield
    finally:
        with _CUDNN_LOCK:
            _cudnn_holders -= 1
            if _cudnn_holders == 0:
                cudnn.deterministic, cudnn.benchmark = _cudnn_saved


def on_cuda(module: nn.Module) -> bool:
    """Whether ``module`` holds a parameter or buffer on a CUDA device."""
    return any(t.device.type == "cuda" for t in itertools.chain(module.parameters(), module.buffers()))


def geometry(image_size: int) -> tuple[int, int]:
    """Return ``(base, n_levels)``: the smallest feature map side and the number of 2x steps.

    28 -> 7x7 and two steps; 32 -> 4x4 and three; 64 -> 4x4 and four.
    """
    if image_size == 28:
        return 7, 2
    return 4, int(math.log2(image_size // 4))


def check_n(n: Any) -> int:
    """Validate a sample count."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a positive int (number of images to sample)")
    return n


def check_labels(labels: Any, n: int, num_classes: int, device: torch.device,
                 generator: torch.Generator | None) -> torch.Tensor | None:
    """Turn ``labels`` (None, an int, a sequence or a tensor) into an int64 tensor ``(n,)``.

    For a conditional model ``None`` draws labels uniformly with ``generator``; for an
    unconditional model (``num_classes == 0``) labels must be ``None``.
    """
    if num_classes == 0:
        if labels is not None:
            raise ValueError("labels were given but the model is unconditional (num_classes=0); pass labels=None")
        return None
    if labels is None:
        gdev = generator.device if generator is not None else torch.device("cpu")
        return torch.randint(0, num_classes, (n,), generator=generator, device=gdev).to(device)
    if isinstance(labels, int) and not isinstance(labels, bool):
        labels = torch.full((n,), labels, dtype=torch.long)
    labels = torch.as_tensor(labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.reshape(-1).long()
    if labels.numel() != n:
        raise ValueError(f"labels has {labels.numel()} entries but n={n}; give one label per image")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0].item()
        raise ValueError(f"label {bad} is out of range; allowed: 0..{num_classes - 1} (num_classes={num_classes})")
    return labels.to(device)


def check_images(x: torch.Tensor, channels: int, image_size: int, name: str = "images") -> torch.Tensor:
    """Validate a ``(B, C, H, W)`` batch and return float images in [0, 1].

    uint8 is divided by 255; float inputs are expected in [0, 1] already.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"{name} must be (B, C, H, W); got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels; this model expects channels={channels}")
    if x.shape[-2:] != (image_size, image_size):
        raise ValueError(f"{name} is {x.shape[-2]}x{x.shape[-1]}; this model expects image_size={image_size}"
                         f" ({image_size}x{image_size}); resize first")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be uint8 or floating point, got {x.dtype}")
    return x.float()


def truncated_normal(shape: tuple[int, ...], truncation: float | None,
                     generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal draws; with ``truncation=t`` values with ``|z| > t`` are redrawn.

    Draws happen on ``generator``'s device (CPU by default) so that a seeded generator gives
    the same latents whatever device the model is on; the result is moved to ``device``.
    """
    gdev = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(shape, generator=generator, device=gdev)
    if truncation is not None:
        if not (isinstance(truncation, (int, float)) and truncation > 0):
            raise ValueError(f"truncation={truncation!r} must be a positive number or None")
        for _ in range(1000):
            bad = z.abs() > truncation
            if not bool(bad.any()):
                break
            z = torch.where(bad, torch.randn(shape, generator=generator, device=gdev), z)
        z = z.clamp(-truncation, truncation)
    return z.to(device)


def class_rows(table: nn.Embedding, labels: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` for class ids ``labels`` (B,), or their weighted sum for class weights (B, K).

    Class weights (soft labels, rows summing to 1) condition a model on a mix of classes, which is
    how :class:`genaug.LatentInterpolate` decodes a latent between two classes; a one-hot row gives
    exactly the row of its class.

    Example:
        >>> table = nn.Embedding(3, 2)
        >>> torch.equal(class_rows(table, torch.tensor([1.0, 0.0, 0.0]).unsqueeze(0)), table(torch.tensor([0])))
        True
    """
    if labels.is_floating_point():
        return labels.to(table.weight.dtype) @ table.weight
    return table(labels)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift come from a class embedding (plain BN if K=0).

    ``labels`` are class ids (B,) or class weights (B, K) (see :func:`class_rows`).
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = self.bn(x)
        if self.num_classes:
            out = out * class_rows(self.gain, labels)[:, :, None, None] + class_rows(self.bias, labels)[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise scaled by a learned per-channel weight (zero at init)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        gdev = generator.device if generator is not None else x.device
        noise = torch.randn((x.shape[0], 1, x.shape[2], x.shape[3]), generator=generator, device=gdev)
        return x + self.weight * noise.to(x.device, x.dtype)


class UpBlock(nn.Module):
    """Conditional BN -> ReLU -> 2x transposed conv (DCGAN) -> optional noise."""

    def __init__(self, cin: int, cout: int, num_classes: int, noise: bool) -> None:
        super().__init__()
        self.norm = ConditionalBatchNorm2d(cin, num_classes)
        self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        self.noise = NoiseInjection(cout) if noise else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.conv(torch.relu(self.norm(x, labels)))
        if self.noise is not None:
            x = self.noise(x, generator)
        return x


class ConvDecoder(nn.Module):
    """Latent (+ class) -> image logits; shared by the GAN generator and the VAE decoder.

    ``z`` (B, Z) -> linear -> (B, C0, base, base) -> n_levels x UpBlock -> BN/ReLU ->
    conv3x3 -> (B, C, H, W) pre-activation output.
    """

    def __init__(self, latent_dim: int, width: int, image_size: int, channels: int,
                 num_classes: int, noise: bool = False) -> None:
        super().__init__()
        base, levels = geometry(image_size)
        self.base = base
        chans = [min(width * 2 ** (levels - i), width * 8) for i in range(levels + 1)]
        self.c0 = chans[0]
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.fc = nn.Linear(latent_dim * (2 if num_classes else 1), chans[0] * base * base)
        self.blocks = nn.ModuleList(UpBlock(chans[i], chans[i + 1], num_classes, noise) for i in range(levels))
        self.out_norm = ConditionalBatchNorm2d(chans[-1], num_classes)
        self.out_conv = nn.Conv2d(chans[-1], channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        h = torch.cat([z, class_rows(self.embed, labels)], 1) if self.embed is not None else z
        x = self.fc(h).view(z.shape[0], self.c0, self.base, self.base)  # (B, C0, base, base)
        for block in self.blocks:
            x = block(x, labels, generator)                             # side doubles
        return self.out_conv(torch.relu(self.out_norm(x, labels)))     # (B, C, H, W)
