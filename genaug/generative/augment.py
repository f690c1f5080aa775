"""Generative augmenters: transforms that replace samples with a GAN's or VAE's output.

* :class:`GenerativeSample` replaces a sample with a generated one of its own class.
* :class:`LatentNoise` encodes a sample, moves its latent by Gaussian noise and decodes it.
* :class:`LatentInterpolate` mixes each sample's latent with a partner's and mixes their labels.

They are transforms like any other (kind ``"replace"``, run by
:func:`genaug.transforms.pipeline.run`): batched (one forward pass per network per call, on the
picked samples only), seeded and replayable, serializable by model reference, and usable in a
:class:`~genaug.Compose` between classical ops, which still fuse on each side. What they share:

* **Labels** go in and out through the call: ``aug(x, labels=y)`` returns a dict with ``image``
  and ``labels``. Hard labels are class ids ``(B,)`` (any integer dtype); soft labels are class
  weights ``(B, K)`` float, rows summing to 1 (torchvision v2 ``MixUp``'s convention); for one
  image ``(C, H, W)``, a single id (or ``(1,)``) or ``(K,)``. Ops that do not mix keep the form
  they get; :class:`LatentInterpolate` returns soft labels (unless ``partners="same_class"``).
  Classical ops pass labels through untouched.
* **Targets** of a replaced sample no longer describe its image: the executor zeroes its masks and
  marks its boxes and keypoints invalid (``boxes_valid``/``keypoints_valid`` False; coordinates
  kept so shapes stay fixed). The torchvision adapter turns invalid boxes into zero-area boxes, so
  ``v2.SanitizeBoundingBoxes`` drops them.
* **Randomness**: latents and noise are drawn on the CPU from the transform's generator (the same
  numbers on every device), for every sample of the batch, so a sample's draw never depends on
  which others were picked. The model runs on the images' device (copied there once if needed).
* **Images** go to the model in 0..1 float32. The model's image size and channels must match the
  input's, or ``adapt=True`` resizes (bilinear, antialiased) and converts gray<->RGB (ITU-R 601
  luma / channel copy) on the way in and out; otherwise a ``ValueError`` says what differs.
* **Serialization** stores the model as ``{"shipped": name, "sha256": ...}`` or ``{"path": file,
  "sha256": ...}`` (the file's sha256); :func:`genaug.from_dict` checks the digest before loading
  and refuses other weights with a :class:`~genaug.generative.CheckpointError`. Never pickle.

Example:
    >>> import torch, genaug as ga
    >>> gan = ga.load_model("mnist-cgan")
    >>> aug = ga.Compose([ga.GenerativeSample(gan, p=0.5), ga.RandomRotation(15)], seed=0)
    >>> out = aug(torch.rand(8, 1, 28, 28), labels=torch.arange(8))
    >>> out["image"].shape, out["labels"].tolist()
    (torch.Size([8, 1, 28, 28]), [0, 1, 2, 3, 4, 5, 6, 7])
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genaug.transforms.base import Params, Transform, check_number, check_range, to_device, uniform

from .checkpoint import SHIPPED, CheckpointError, file_sha256, load_model, read_header, shipped_path
from .latent import lerp, slerp
from .models.common import training_mode, truncated_normal

_LUMA = (0.2989, 0.587, 0.114)  # ITU-R 601, as torchvision's rgb_to_grayscale


# ---------------------------------------------------------------------------------- the model


@functools.lru_cache(maxsize=None)
def _shipped_sha256(name: str) -> str:
    return file_sha256(shipped_path(name))


@functools.lru_cache(maxsize=1)
def _shipped_by_digest() -> dict[str, str]:
    """Weights digest (checkpoint metadata ``sha256``) -> shipped name."""
    return {read_header(shipped_path(name))[0].get("sha256", ""): name for name in SHIPPED}


def resolve_model(model: Any) -> tuple[nn.Module, dict[str, str] | None]:
    """The model an augmenter runs and the reference :meth:`Transform.to_dict` stores for it.

    Args:
        model: a shipped name (``"mnist-cgan"``), a path to a genaug checkpoint, a reference dict
            ``{"shipped": name, "sha256": hex}`` / ``{"path": file, "sha256": hex}`` (what
            ``to_dict`` writes: the file's sha256 is checked before loading), or a loaded model.

    Returns:
        ``(model, reference)``. A loaded model is referenced by its shipped name when its weights
        are a shipped model's; otherwise the reference is ``None`` (it runs, but cannot be saved).

    Raises:
        CheckpointError: the file's sha256 differs from the reference's, or it is not a genaug checkpoint.
        FileNotFoundError: the path does not exist. TypeError/ValueError: anything else.

    Example:
        >>> model, ref = resolve_model("mnist-cgan")
        >>> ref["shipped"], len(ref["sha256"])
        ('mnist-cgan', 64)
    """
    if isinstance(model, dict):
        return _load_reference(model)
    if isinstance(model, (str, os.PathLike)):
        if isinstance(model, str) and model in SHIPPED:
            return load_model(model), {"shipped": model, "sha256": _shipped_sha256(model)}
        if not Path(model).is_file():
            raise FileNotFoundError(f"model={str(model)!r} is neither a shipped model ({sorted(SHIPPED)}) nor an "
                                    "existing checkpoint file")
        digest = file_sha256(model)  # before loading: the reference describes the bytes that were loaded
        return load_model(model), {"path": str(model), "sha256": digest}
    if isinstance(model, nn.Module):
        digest = (getattr(model, "checkpoint_metadata", None) or {}).get("sha256")
        name = _shipped_by_digest().get(digest) if digest else None
        return model, ({"shipped": name, "sha256": _shipped_sha256(name)} if name else None)
    raise TypeError(f"model must be a ConditionalGAN / ConditionalVAE, a shipped name {sorted(SHIPPED)}, a checkpoint "
                    f"path or a reference dict, got {type(model).__name__}")


def _load_reference(ref: dict[str, Any]) -> tuple[nn.Module, dict[str, str]]:
    keys = sorted(ref)
    if keys not in (["sha256", "shipped"], ["path", "sha256"]) or not all(isinstance(v, str) for v in ref.values()):
        raise ValueError(f"model reference must be {{'shipped': name, 'sha256': hex}} or {{'path': file, 'sha256': hex}} "
                         f"(strings), got {ref!r}")
    if "shipped" in ref:
        if ref["shipped"] not in SHIPPED:
            raise ValueError(f"model reference names shipped model {ref['shipped']!r}; shipped: {sorted(SHIPPED)}")
        what, digest, source = f"shipped model {ref['shipped']!r}", _shipped_sha256(ref["shipped"]), ref["shipped"]
    else:
        if not Path(ref["path"]).is_file():
            raise FileNotFoundError(f"model file {ref['path']!r} (from the pipeline's model reference) does not exist")
        what, digest, source = f"model file {ref['path']!r}", file_sha256(ref["path"]), ref["path"]
    if digest != ref["sha256"]:
        raise CheckpointError(f"{what} has sha256 {digest}, but the pipeline was saved with sha256 {ref['sha256']}: the "
                              "weights changed since (another file or genaug version); refusing to run other weights")
    return load_model(source), dict(ref)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` with ``channels`` (1 or 3) channels: RGB -> luma, gray -> copied to 3 channels."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return x.repeat(1, 3, 1, 1)


def _one_hot(ids: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """``(n, k)`` one-hot rows (a scatter: no value check, so no device read)."""
    return torch.zeros(ids.shape[0], k, dtype=dtype, device=ids.device).scatter_(1, ids.unsqueeze(1), 1.0)


# ---------------------------------------------------------------------------------- the base


class _Generative(Transform):
    """Shared machinery: the model and its reference, label checks, image adaptation."""

    kind = "replace"
    uses_labels = True
    needs_encoder: ClassVar[bool] = False

    def __init__(self, model: Any, p: float, adapt: bool, same_on_batch: bool, seed: int | None) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        name = type(self).__name__
        self.model, self.model_reference = resolve_model(model)
        kind = getattr(self.model, "kind", None)
        if kind not in ("gan", "vae"):
            raise TypeError(f"{name}: model must be a ConditionalGAN or ConditionalVAE (e.g. 'mnist-cgan', 'mnist-cvae' "
                            f"or a GAN/VAE checkpoint path), got {type(self.model).__name__}")
        if self.needs_encoder and kind != "vae":
            raise TypeError(f"{name} needs a model with an encoder: a ConditionalVAE (the shipped 'mnist-cvae' or a VAE "
                            f"checkpoint from `genaug train vae`); a {type(self.model).__name__} has none "
                            "(GenerativeSample works with GANs)")
        if not isinstance(adapt, bool):
            raise TypeError(f"adapt must be a bool, got {adapt!r} ({type(adapt).__name__})")
        self.adapt = adapt
        self.config = self.model.config
        self._init_args["model"] = self.model_reference if self.model_reference is not None else self.model
        self._copies: dict[torch.device, nn.Module] = {}

    # ------------------------------------------------------------------ plumbing
    def _model_name(self) -> str:
        ref = self.model_reference or {}
        return repr(ref.get("shipped") or ref.get("path") or type(self.model).__name__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={self._model_name() if k == 'model' else repr(v)}" for k, v in self._init_args.items())
        return f"{type(self).__name__}({args})"

    def to_dict(self) -> dict[str, Any]:
        if self.model_reference is None:
            raise TypeError(f"cannot serialize {type(self).__name__}: its {type(self.model).__name__} was not loaded "
                            "from a shipped name or a checkpoint file. Save it with genaug.generative.save_checkpoint("
                            "model, 'model.safetensors') and pass model='model.safetensors' (stored as path + sha256)")
        return super().to_dict()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_copies"] = {}  # device copies are rebuilt where needed
        return state

    def _model_on(self, device: torch.device) -> nn.Module:
        """The model on ``device`` (copied there once and kept, when it lives elsewhere)."""
        if _device_of(self.model) == device:
            return self.model
        if device not in self._copies:
            self._copies[device] = copy.deepcopy(self.model).to(device).eval()
        return self._copies[device]

    # ------------------------------------------------------------------ inputs
    def _check_image(self, image: torch.Tensor) -> None:
        c, h, w = image.shape[1:]
        mc, s = self.config.channels, self.config.image_size
        if c == mc and (h, w) == (s, s):
            return
        makes = f"the model {self._model_name()} makes {mc}-channel {s}x{s} images"
        if c not in (1, 3):
            raise ValueError(f"{type(self).__name__}: the images have {c} channels but {makes}; only 1- and 3-channel "
                             "images can be adapted (adapt=True converts gray<->RGB)")
        if not self.adapt:
            raise ValueError(f"{type(self).__name__}: the images are {c}x{h}x{w} (channels x height x width) but {makes}: "
                             "pass adapt=True to resize and convert gray<->RGB at the model's input and output, or "
                             "resize the images first")

    def _labels(self, batch: Any, required: bool = True) -> torch.Tensor | None:
        """The batch's labels as ``(B,)`` int64 class ids or ``(B, K)`` float class weights, checked.

        Values are checked when the labels are on the CPU (the usual case); on an accelerator that
        check would read them back (a host sync), so it is skipped there.
        """
        name, k, b = type(self).__name__, self.config.num_classes, batch.batch_size
        labels = batch.labels
        ids = f"0..{k - 1}" if k else "0..K-1"
        if labels is None:
            if not required:
                return None
            raise ValueError(f"{name} needs the images' labels: call aug(images, labels=labels) with class ids ({b},) in "
                             f"{ids} or class weights ({b}, {k or 'K'}); it returns a dict with 'image' and 'labels'")
        if labels.dtype == torch.bool or labels.is_complex():
            raise TypeError(f"{name}: labels must be integer class ids or float class weights, got dtype {labels.dtype}")
        if labels.is_floating_point():
            soft = labels.reshape(1, -1) if batch.unbatched else labels
            if soft.dim() != 2 or soft.shape[0] != b or (k and soft.shape[1] != k):
                raise ValueError(f"{name}: float labels are class weights (soft labels) shaped ({b}, {k or 'K'}) "
                                 f"((K,) for one image), got {tuple(labels.shape)}; give class ids as an integer tensor")
            if soft.device.type == "cpu" and soft.numel() and not (
                bool((soft >= 0).all()) and bool(((soft.double().sum(1) - 1).abs() < 1e-3).all())
            ):
                raise ValueError(f"{name}: soft labels must be non-negative class weights with rows summing to 1")
            return soft
        hard = labels.reshape(-1)
        if hard.shape[0] != b or (labels.dim() != 1 and not batch.unbatched):
            raise ValueError(f"{name}: labels must be class ids shaped ({b},) (one int for one image), got "
                             f"{tuple(labels.shape)}")
        if k and hard.device.type == "cpu" and hard.numel():
            low, high = int(hard.min()), int(hard.max())
            if low < 0 or high >= k:
                raise ValueError(f"{name}: labels must be class ids in {ids} (the model's num_classes={k}), "
                                 f"got {low if low < 0 else high}")
        return hard.long()

    def _condition(self, labels: torch.Tensor | None, rows: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        """The model's class condition for samples ``rows`` (CPU indices): ids, or weights for soft labels."""
        if labels is None or not self.config.num_classes:
            return None
        return to_device(labels.index_select(0, to_device(rows, labels.device)), device)

    @staticmethod
    def _user_labels(labels: torch.Tensor, batch: Any) -> torch.Tensor:
        """Labels of the whole batch back in the user's form (one image: an id's shape or (K,))."""
        if not batch.unbatched:
            return labels
        return labels.reshape(batch.labels.shape) if not labels.is_floating_point() else labels[0]

    # ------------------------------------------------------------------ the networks
    def _to_model(self, x: torch.Tensor, model: nn.Module) -> torch.Tensor:
        x = _channels(x.to(next(model.parameters()).dtype), self.config.channels)
        s = self.config.image_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    @staticmethod
    def _from_model(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        y = _channels(y, like.shape[1])
        if y.shape[-2:] != like.shape[-2:]:
            y = F.interpolate(y, size=tuple(like.shape[-2:]), mode="bilinear", align_corners=False, antialias=True)
            y = y.clamp(0.0, 1.0)
        return y.to(like.dtype)

    def _encode(self, model: nn.Module, images: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """Posterior means ``(n, Z)`` of float images on the model's device (eval mode, no grad)."""
        with torch.no_grad(), training_mode(model, False):
            return model.encoder(self._to_model(images, model), condition)[0]


# ---------------------------------------------------------------------------------- the augmenters


class GenerativeSample(_Generative):
    """Replace each sample, with probability ``p``, by a generated sample of its own class.

    Args:
        model: a class-conditional ``ConditionalGAN`` or ``ConditionalVAE`` (a VAE samples its
            prior: ``N(0, I)`` or its fitted per-class prior), a shipped name or a checkpoint path.
        p: probability that a sample is replaced.
        truncation: redraw latent entries with ``|z| > truncation`` (fidelity up, diversity down).
        adapt: resize / convert gray<->RGB between the images and the model (else a mismatch raises).
        same_on_batch: one latent for the whole batch (every replaced sample of a class looks alike).
        seed: seed of the transform's generator (``None`` follows torch's RNG).

    Labels are required: class ids ``(B,)`` are kept as they are (a replaced sample keeps its
    class). Soft labels ``(B, K)`` (e.g. after :class:`LatentInterpolate`) pick the class with the
    largest weight (argmax), and a replaced sample's row becomes one-hot for that class. Masks,
    boxes and keypoints of a replaced sample are cleared (see the module docstring).
    ``params``: ``apply`` (which samples), ``z`` ``(B, latent_dim)`` (the latent, or for a VAE the
    standard-normal draw its prior maps to one) and, for GANs with noise injection, ``noise_seed``.

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.GenerativeSample("mnist-cgan", p=1.0, seed=0)
        >>> x, y = torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 2, 3])
        >>> out, params = aug(x, labels=y, return_params=True)
        >>> out["image"].dtype, bool(out["image"].float().mean() > 10), params["z"].shape
        (torch.uint8, True, torch.Size([4, 64]))
        >>> torch.equal(aug(x, labels=y, params=params)["image"], out["image"])
        True
    """

    def __init__(
        self,
        model: Any,
        p: float = 0.5,
        truncation: float | None = None,
        adapt: bool = False,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        # (cheap arguments first: a bad one fails before the model is loaded)
        self.truncation = None if truncation is None else check_number("truncation", truncation, low=0.0, low_open=True)
        super().__init__(model, p=p, adapt=adapt, same_on_batch=same_on_batch, seed=seed)
        if not self.config.num_classes:
            raise ValueError(f"GenerativeSample replaces each sample with a generated one of its own class, so it needs "
                             f"a class-conditional model (num_classes > 0); {self._model_name()} is unconditional")
        if self.model.kind == "vae" and self.config.prior == "aggregate" and not self.model._prior_fitted:
            raise ValueError(f"GenerativeSample: the VAE {self._model_name()} has prior='aggregate' but its prior was "
                             "never fitted; call vae.fit_prior(train_images, train_labels) first")

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        shape = (n, self.config.latent_dim)
        params: Params = {"z": truncated_normal(shape, self.truncation, generator, torch.device("cpu"))}
        if getattr(self.config, "noise_injection", False):  # one stream per call: see the docs' limitation
            params["noise_seed"] = torch.randint(0, 2**62, (1,), generator=generator).expand(n).clone()
        return params

    def replace_samples(self, batch: Any, params: Params, index: torch.Tensor) -> tuple[torch.Tensor, Any]:
        labels = self._labels(batch)
        assert labels is not None
        self._check_image(batch.image)
        soft = labels.is_floating_point()
        ids = labels.argmax(1) if soft else labels
        out_labels = batch.labels
        if soft and len(index):
            rows = to_device(index, labels.device)
            one_hot = _one_hot(ids.index_select(0, rows), self.config.num_classes, labels.dtype)
            out_labels = self._user_labels(labels.index_copy(0, rows, one_hot), batch)
        if not len(index):
            return batch.image[:0], out_labels
        device = batch.image.device
        model = self._model_on(device)
        y = self._condition(ids, index, device)
        eps = params["z"].index_select(0, index)
        if model.kind == "gan":
            seed = params.get("noise_seed")
            noise = None if seed is None else torch.Generator().manual_seed(int(seed[index[0]]))
            images = model._generate(eps, y, noise)
        else:
            z = to_device(eps, device)
            if self.config.prior == "aggregate":
                z = model.prior_mean[y] + (model.prior_scale_tril[y] @ z.unsqueeze(-1)).squeeze(-1)
            images = model._decode(z, y)
        return self._from_model(images, batch.image[: len(index)]), out_labels


class LatentNoise(_Generative):
    """Encode each sample, add Gaussian noise to its latent and decode it: a variation that keeps its identity.

    ``z = mu(x, y) + sigma * eps`` with ``eps ~ N(0, I)``; ``sigma=0`` gives the VAE's reconstruction.

    Args:
        model: a ``ConditionalVAE`` (or a shipped name / checkpoint path of one): it needs an encoder.
        sigma: noise scale in latent units (the prior's standard deviation is 1): a number ``>= 0``
            or a ``(min, max)`` range drawn per sample.
        p: probability that a sample is re-encoded.
        adapt, same_on_batch, seed: as in :class:`GenerativeSample`.

    Labels are kept. A conditional VAE needs them (class ids, or soft class weights, which it is
    conditioned on as they are); an unconditional one passes any labels through.
    ``params``: ``apply``, ``sigma`` ``(B,)``, ``eps`` ``(B, latent_dim)``.

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.LatentNoise("mnist-cvae", sigma=0.5, p=1.0, seed=0)
        >>> out = aug(torch.rand(4, 1, 28, 28), labels=torch.tensor([1, 1, 7, 7]))
        >>> out["image"].shape, out["labels"].tolist()
        (torch.Size([4, 1, 28, 28]), [1, 1, 7, 7])
    """

    needs_encoder = True

    def __init__(
        self,
        model: Any,
        sigma: float | tuple[float, float] = 0.5,
        p: float = 1.0,
        adapt: bool = False,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        self.sigma = check_range("sigma", sigma, low=0.0)
        super().__init__(model, p=p, adapt=adapt, same_on_batch=same_on_batch, seed=seed)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"sigma": uniform(*self.sigma, n, generator),
                "eps": torch.randn(n, self.config.latent_dim, generator=generator)}

    def replace_samples(self, batch: Any, params: Params, index: torch.Tensor) -> tuple[torch.Tensor, Any]:
        labels = self._labels(batch, required=bool(self.config.num_classes))
        self._check_image(batch.image)
        if not len(index):
            return batch.image[:0], batch.labels
        device = batch.image.device
        model = self._model_on(device)
        y = self._condition(labels, index, device)
        mu = self._encode(model, batch.image.index_select(0, to_device(index, device)), y)
        noise = (params["sigma"].index_select(0, index).unsqueeze(1) * params["eps"].index_select(0, index)).to(mu.dtype)
        images = model._decode(mu + to_device(noise, device), y)
        return self._from_model(images, batch.image[: len(index)]), batch.labels


MODES = ("slerp", "lerp")
PARTNERS = ("any", "same_class")


class LatentInterpolate(_Generative):
    """Mix each sample's latent with a partner's from the same batch, and mix their labels.

    With weight ``alpha`` (drawn per sample) for the partner: ``z = slerp(z_own, z_partner, alpha)``
    (or ``lerp``), decoded with the class condition ``(1 - alpha) * y_own + alpha * y_partner``,
    which is also the returned soft label: ``(B, K)`` float, rows summing to 1 (torchvision v2
    ``MixUp``'s convention; samples not picked get their one-hot row; a pair of one class gets
    exactly a one-hot row). ``slerp`` keeps Gaussian latents on their shell; ``lerp`` is linear.

    Args:
        model: a ``ConditionalVAE`` (or a shipped name / checkpoint path of one).
        alpha: the partner's weight, a number or a ``(min, max)`` range within [0, 1].
        mode: ``"slerp"`` or ``"lerp"``.
        partners: ``"any"`` (another sample of the batch, uniformly) or ``"same_class"`` (another
            sample of the same class, itself when it has none): every pair shares a class, so
            class ids come back unchanged (hard labels kept).
        p: probability that a sample is mixed.
        adapt, same_on_batch, seed: as in :class:`GenerativeSample`.

    **Replay and partners.** A partner is another sample of the batch, so the first call records
    what replay needs in ``params["partner"]``: ``index`` ``(B,)`` (the partner's row), ``latent``
    ``(B, latent_dim)`` (its posterior mean, on the images' device; zero for samples not picked)
    and ``label`` (its label, in the form given). Replay uses the recorded latent and label instead
    of looking at the partner again, so ``params=`` reproduces the call bitwise and one sample
    replayed alone with its params rows (``take_rows``) gives its row of the batched result: it
    carries its partner with it. Replaying on other images mixes them with the recorded partners.
    ``params`` also hold ``apply``, ``alpha`` ``(B,)`` and ``u`` ``(B,)`` (the uniform draw that
    picks the partner). A batch of one has no other sample: its partner is itself.

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.LatentInterpolate("mnist-cvae", alpha=(0.2, 0.8), mode="slerp", seed=0)
        >>> out, params = aug(torch.rand(4, 1, 28, 28), labels=torch.tensor([0, 1, 2, 3]), return_params=True)
        >>> out["labels"].shape, torch.allclose(out["labels"].sum(1), torch.ones(4))
        (torch.Size([4, 10]), True)
        >>> sorted(params["partner"])
        ['index', 'label', 'latent']
    """

    needs_encoder = True
    per_sample = False  # a partner comes from the same batch: never split it into chunks
    partners_from_batch = True  # chosen from params["u"] and recorded: a fixed block gives fixed items

    def __init__(
        self,
        model: Any,
        alpha: float | tuple[float, float] = (0.2, 0.8),
        mode: str = "slerp",
        partners: str = "any",
        p: float = 1.0,
        adapt: bool = False,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        self.alpha = check_range("alpha", alpha, low=0.0, high=1.0)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if partners not in PARTNERS:
            raise ValueError(f"partners must be one of {PARTNERS}, got {partners!r}")
        self.mode, self.partners = mode, partners
        super().__init__(model, p=p, adapt=adapt, same_on_batch=same_on_batch, seed=seed)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"alpha": uniform(*self.alpha, n, generator),
                "u": torch.rand(n, dtype=torch.float64, generator=generator),
                "partner": {}}  # filled by the first call (see the class docstring)

    def _choose_partners(self, u: torch.Tensor, labels: torch.Tensor | None, b: int) -> torch.Tensor:
        """Each sample's partner row: uniform over the others (on the CPU), or over the others of its class.

        The same-class choice runs as tensor ops on the labels' device (no value is read back): a
        sample's rank among its candidates is ``floor(u * count)``; with none it pairs with itself.
        """
        if b < 2:
            return torch.zeros(b, dtype=torch.long)
        if self.partners == "any":
            j = (u * (b - 1)).floor().long().clamp_(max=b - 2)
            return j + (j >= torch.arange(b)).long()  # skip the sample itself
        assert labels is not None
        ids = labels.argmax(1) if labels.is_floating_point() else labels
        same = ids.unsqueeze(1) == ids.unsqueeze(0)
        same.fill_diagonal_(False)
        count = same.sum(1)
        rank = (to_device(u, ids.device) * count).floor().long()
        hit = same & (same.long().cumsum(1) - 1 == rank.unsqueeze(1))
        return torch.where(count > 0, hit.long().argmax(1), torch.arange(b, device=ids.device))

    def _soft(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.is_floating_point():
            return labels
        if not self.config.num_classes:
            raise ValueError("LatentInterpolate: the model is unconditional, so it cannot turn class ids into class "
                             "weights; pass soft labels (B, K), no labels, or partners='same_class'")
        return _one_hot(labels, self.config.num_classes, torch.float32)

    def _record_partners(self, batch: Any, params: Params, labels: torch.Tensor | None, index: torch.Tensor) -> None:
        """First call: choose partners in this batch and record their rows, labels and latents."""
        rec, b, device = params["partner"], batch.batch_size, batch.image.device
        partner = self._choose_partners(params["u"], labels, b)
        latent = torch.zeros(b, self.config.latent_dim, device=device)
        if len(index):
            model = self._model_on(device)
            picked = partner.index_select(0, to_device(index, partner.device))
            images = batch.image.index_select(0, to_device(picked, device))
            condition = None if labels is None else self._condition(labels, picked, device)
            latent = latent.index_copy(0, to_device(index, device), self._encode(model, images, condition))
        rec["index"], rec["latent"] = partner, latent
        if labels is not None:
            rec["label"] = labels.index_select(0, to_device(partner, labels.device))

    def _check_recorded(self, rec: Any, batch: Any, labels: torch.Tensor | None) -> None:
        b, z = batch.batch_size, self.config.latent_dim
        latent = rec.get("latent") if isinstance(rec, dict) else None
        if not isinstance(latent, torch.Tensor) or tuple(latent.shape) != (b, z):
            raise ValueError(f"params['partner']['latent'] must be the ({b}, {z}) partner latents a call with "
                             f"return_params=True recorded, got {getattr(latent, 'shape', latent)!r}")
        label = rec.get("label")
        if labels is not None and (not isinstance(label, torch.Tensor) or label.shape != labels.shape
                                   or label.is_floating_point() != labels.is_floating_point()):
            raise ValueError("params['partner']['label'] does not fit these labels: replay params with labels of the "
                             "form (ids or class weights) and shape they were recorded with")

    def replace_samples(self, batch: Any, params: Params, index: torch.Tensor) -> tuple[torch.Tensor, Any]:
        conditional = bool(self.config.num_classes)
        labels = self._labels(batch, required=conditional or self.partners == "same_class")
        self._check_image(batch.image)
        if not isinstance(params.get("partner"), dict):
            raise ValueError("params lack the 'partner' dict of LatentInterpolate: pass the params a call returned")
        rec = params["partner"]
        if "latent" not in rec:
            self._record_partners(batch, params, labels, index)
        self._check_recorded(rec, batch, labels)
        keep_hard = labels is None or (not labels.is_floating_point() and self.partners == "same_class")
        own = None if keep_hard else self._soft(labels)
        n, device = len(index), batch.image.device
        if n:
            alpha = params["alpha"].index_select(0, index).unsqueeze(1)
        if own is not None and n:
            rows = to_device(index, own.device)
            a = to_device(alpha, own.device, own.dtype)
            partner_soft = self._soft(rec["label"]).index_select(0, rows).to(own.dtype)
            mixed = (1 - a) * own.index_select(0, rows) + a * partner_soft
            out_labels = self._user_labels(own.index_copy(0, rows, mixed), batch)
        else:
            out_labels = batch.labels if own is None else self._user_labels(own, batch)
        if not n:
            return batch.image[:0], out_labels
        model = self._model_on(device)
        condition = self._condition(labels, index, device)
        z_own = self._encode(model, batch.image.index_select(0, to_device(index, device)), condition)
        latent = rec["latent"]
        z_partner = to_device(latent.index_select(0, to_device(index, latent.device)), device, z_own.dtype)
        z = (slerp if self.mode == "slerp" else lerp)(z_own, z_partner, to_device(alpha, device, z_own.dtype))
        if own is not None and conditional:
            condition = to_device(mixed, device)  # the decoder sees the mixed class, like the label
        return self._from_model(model._decode(z, condition), batch.image[:n]), out_labels


__all__ = ["GenerativeSample", "LatentInterpolate", "LatentNoise", "resolve_model"]
