"""Containers: Compose, RandomApply, OneOf, SomeOf — and the fusion they enable.

A container samples one gate per sample and child, folds it into each child's ``apply`` mask and
hands the flattened leaves to :func:`genaug.transforms.pipeline.run`, which fuses consecutive
geometric leaves into one warp and consecutive colour leaves into one colour map. Because gating
is only a mask, ``OneOf([RandomRotation(...), RandomAffine(...)])`` still costs one resampling.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch

from genaug.transforms.opencv_backend import check_backend
from genaug.transforms.base import DRAWN_FOR, Params, Transform, check_numbers, drawn_for, expand_params


class ModuleStage(Transform):
    """Wraps a third-party batch callable (a ``kornia.augmentation`` module, any ``nn.Module``).

    It runs as an unfused pixel stage on the float 0..1 batch, keeps its own randomness, and is
    applied to every sample (its own ``p`` decides). It cannot be serialized or replayed exactly.
    """

    per_sample = False
    needs_unit_range = False  # the user's module knows what it expects

    def __init__(self, module: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        if not callable(module):
            raise TypeError(f"module must be callable on a (B, C, H, W) tensor, got {type(module).__name__}")
        self.module = module

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        # A copy: the module may work in place (inplace=True), and ``image`` may be the caller's tensor.
        out = self.module(image.clone())
        if not isinstance(out, torch.Tensor) or out.shape != image.shape:
            raise ValueError(
                f"{type(self.module).__name__} inside a Compose must return a tensor of the input's shape "
                f"{tuple(image.shape)}, got {getattr(out, 'shape', type(out).__name__)}"
            )
        return out


def _as_transform(t: Any, index: int) -> Transform:
    if isinstance(t, Transform):
        return t
    if callable(t):
        return ModuleStage(t)
    raise TypeError(f"transforms[{index}] must be a genaug Transform or a callable on batches, got {type(t).__name__}")


class Compose(Transform):
    """Apply ``transforms`` in order, fusing consecutive geometric ops into one resampling.

    Args:
        transforms: genaug transforms (or third-party batch callables, run unfused).
        p: probability that the whole sequence is applied to a sample.
        same_on_batch: one draw of every parameter for the whole batch.
        seed: seed of the generator that samples *all* children's parameters (children's own
            generators are used only when they are called on their own).
        interpolation, padding_mode, fill, antialias: when given, override the warp options of
            every geometric child (so the whole chain can fuse into one warp).
        backend: ``"torch"`` (default: whole-batch PyTorch/Kornia ops, any device) or ``"opencv"``:
            on the CPU, run the fused chain sample by sample on OpenCV's uint8/float32 kernels
            (several times faster at ImageNet sizes; outputs within a few levels of the torch
            backend's; see :mod:`genaug.transforms.opencv_backend`). Calls it cannot run (another
            device, autograd, ops without an OpenCV kernel) run on torch.

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.Compose([
        ...     ga.RandomResizedCrop(size=(32, 32), scale=(0.5, 1.0)),
        ...     ga.RandomRotation(degrees=30),
        ...     ga.ColorJitter(brightness=0.4, contrast=0.4),
        ... ], seed=0)
        >>> x = torch.rand(8, 3, 64, 64)
        >>> out, params = aug(x, return_params=True)
        >>> out.shape, torch.equal(aug(x, params=params), out)
        (torch.Size([8, 3, 32, 32]), True)
    """

    kind = "container"

    def __init__(
        self,
        transforms: Sequence[Any],
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
        interpolation: str | None = None,
        padding_mode: str | None = None,
        fill: float | Sequence[float] | None = None,
        antialias: bool | None = None,
        backend: str = "torch",
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        self.backend = check_backend(backend)
        if isinstance(transforms, (Transform, str)) or not isinstance(transforms, (list, tuple)):
            raise TypeError(f"transforms must be a list of transforms, got {type(transforms).__name__}")
        self.transforms = [_as_transform(t, i) for i, t in enumerate(transforms)]
        self.overrides = {
            k: v
            for k, v in dict(
                interpolation=interpolation,
                padding_mode=padding_mode,
                fill=tuple(fill) if isinstance(fill, (list, tuple)) else fill,
                antialias=antialias,
            ).items()
            if v is not None
        }
        if self.overrides:
            from genaug.transforms.warp import WarpOptions

            WarpOptions(**self.overrides)  # validate now, not at the first call

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, index: int) -> Transform:
        return self.transforms[index]

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        for t in self.transforms:
            size = t.output_size(size)
        return size

    def child_sizes(self, size: tuple[int, int]) -> list[tuple[int, int]]:
        """The input size each child is sampled for: chained here (each child sees the previous one's output)."""
        sizes = []
        for t in self.transforms:
            sizes.append(size)
            size = t.output_size(size)
        return sizes

    def _gates(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """``(n, len(transforms))`` bool: which children each sample runs (None: all of them)."""
        return None

    def sample_params(self, batch_size: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        n = 1 if self.same_on_batch else batch_size
        sizes = self.child_sizes(size)
        params: Params = {"apply": torch.rand(n, generator=generator) < self.p}
        gates = self._gates(n, generator)
        if gates is not None:
            params["gate"] = gates
        for i, (t, child_size) in enumerate(zip(self.transforms, sizes)):
            params[str(i)] = t.sample_params(n, child_size, generator)
        params = expand_params(params, batch_size) if self.same_on_batch and batch_size != 1 else params
        params[DRAWN_FOR] = drawn_for(self, size)
        return params

    def check_params(self, params: Any, batch_size: int, size: tuple[int, int], where: str = "params") -> None:
        super().check_params(params, batch_size, size, where)
        gate = params.get("gate")
        if (gate is None) != (self._gates(0, torch.Generator()) is None) or (
            gate is not None and tuple(gate.shape[1:]) != (len(self.transforms),)
        ):
            raise ValueError(f"{where}['gate'] does not fit this {type(self).__name__} of {len(self.transforms)} children")
        for i, (t, child_size) in enumerate(zip(self.transforms, self.child_sizes(size))):
            if str(i) not in params:
                raise ValueError(
                    f"{where} lack the entry '{i}' for child {i} ({type(t).__name__}) of this {type(self).__name__}: "
                    "were they sampled by it?"
                )
            t.check_params(params[str(i)], batch_size, child_size, f"{where}['{i}']")

    def leaves(
        self, params: Params, gate: torch.Tensor | None, overrides: dict[str, Any] | None = None
    ) -> list[tuple[Transform, Params, dict[str, Any]]]:
        missing = [str(i) for i in range(len(self.transforms)) if str(i) not in params]
        if missing:
            raise ValueError(f"params lack entries {missing} for this {type(self).__name__}: were they sampled by it?")
        gate = params["apply"] if gate is None else params["apply"] & gate
        merged = {**(overrides or {}), **self.overrides}
        out: list[tuple[Transform, Params, dict[str, Any]]] = []
        for i, t in enumerate(self.transforms):
            child_gate = gate & params["gate"][:, i] if "gate" in params else gate
            out.extend(t.leaves(params[str(i)], child_gate, merged))
        return out


class RandomApply(Compose):
    """Apply the whole list of ``transforms`` to each sample with probability ``p``.

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomApply([ga.RandomRotation(90)], p=0.5, seed=0)(torch.rand(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(
        self, transforms: Sequence[Any], p: float = 0.5, same_on_batch: bool = False, seed: int | None = None
    ) -> None:
        super().__init__(transforms, p=p, same_on_batch=same_on_batch, seed=seed)


def _check_same_output_size(container: Compose, size: tuple[int, int]) -> tuple[int, int]:
    sizes = {t.output_size(size) for t in container.transforms}
    if len(sizes) > 1:
        raise ValueError(
            f"{type(container).__name__} children must all produce the same output size, got {sorted(sizes)} "
            f"for input {size}"
        )
    return sizes.pop() if sizes else size


class _Alternatives(Compose):
    """Containers whose children are alternatives (OneOf, SomeOf): every child acts on the container's input.

    Each child is sampled for the container's input size, and each sample runs the children it
    picked, in their listed order. When no op under the children changes the image size, an
    unpicked child is simply gated off, so the whole tree still fuses into one warp. When some do
    (``OneOf([CenterCrop(16), RandomCrop(16)])``), each sample follows its own path: see
    :class:`genaug.transforms.pipeline.Alternatives`. A sample that picks no child gets the
    identity when the children keep the image size, and otherwise the first child in its skipped
    form (a crop's centre crop, a resize or resized crop's whole-image resize), so every sample
    has the output size.
    """

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return _check_same_output_size(self, size)

    def child_sizes(self, size: tuple[int, int]) -> list[tuple[int, int]]:
        return [size] * len(self.transforms)

    def sample_params(self, batch_size: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        self.output_size(size)
        return super().sample_params(batch_size, size, generator)

    def leaves(
        self, params: Params, gate: torch.Tensor | None, overrides: dict[str, Any] | None = None
    ) -> list[tuple[Transform, Params, dict[str, Any]]]:
        flat = super().leaves(params, gate, overrides)
        if all(leaf.output_size(_stamped_size(p)) == _stamped_size(p) for leaf, p, _ in flat):
            return flat  # gating an op that keeps the size off is the identity: fuse as usual
        from genaug.transforms.pipeline import Alternatives

        picks = params["gate"] & params["apply"].unsqueeze(1)
        if gate is not None:
            picks = picks & gate.unsqueeze(1)
        merged = {**(overrides or {}), **self.overrides}
        stage = Alternatives(self, merged, flat)
        return [(stage, {**params, "picks": picks, "apply": torch.ones_like(params["apply"])}, {})]


def _stamped_size(params: Params) -> tuple[int, int]:
    h, w = params[DRAWN_FOR]["size"]
    return int(h), int(w)


class OneOf(_Alternatives):
    """Apply exactly one of ``transforms`` per sample, chosen with ``weights`` (uniform by default).

    Every child acts on the OneOf's input, so children may change the image size as long as they
    all give the same output size (``OneOf([RandomResizedCrop(224), Compose([Resize(256),
    CenterCrop(224)])])``). Samples skipped by ``p`` get the identity when the children keep the
    size, and otherwise the first child's skipped form (e.g. a crop's centre crop).

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.OneOf([ga.RandomRotation(30), ga.RandomAffine(0, shear=20)], seed=0)
        >>> aug(torch.rand(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
        >>> ga.OneOf([ga.CenterCrop(16), ga.RandomCrop(16)], seed=0)(torch.rand(4, 3, 64, 64)).shape
        torch.Size([4, 3, 16, 16])
    """

    def __init__(
        self,
        transforms: Sequence[Any],
        weights: Sequence[float] | None = None,
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(transforms, p=p, same_on_batch=same_on_batch, seed=seed)
        if not self.transforms:
            raise ValueError("OneOf needs at least one transform")
        if weights is None:
            weights = [1.0] * len(self.transforms)
        values = check_numbers("weights", weights)
        if len(values) != len(self.transforms) or min(values) < 0 or not 0 < math.fsum(values) < math.inf:
            raise ValueError(
                f"weights must be {len(self.transforms)} finite non-negative numbers with a positive, finite sum "
                f"(one per transform), got {weights!r}"
            )
        self.weights = torch.tensor(values, dtype=torch.float64)

    def _gates(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if n == 0:
            return torch.zeros(0, len(self.transforms), dtype=torch.bool)
        choice = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return torch.nn.functional.one_hot(choice, len(self.transforms)).bool()


class SomeOf(_Alternatives):
    """Apply a random subset of ``transforms`` per sample (in their listed order).

    Args:
        n: how many to apply: an int, or a ``(min, max)`` range drawn per sample.

    Children that change the image size act on the SomeOf's input, so at most one of them can
    apply per sample: with such children ``n`` may not exceed 1 (use :class:`OneOf`).

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.SomeOf([ga.RandomRotation(30), ga.RandomHorizontalFlip(1.0), ga.RandomBrightness(0.3)], n=2, seed=0)
        >>> aug(torch.rand(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(
        self,
        transforms: Sequence[Any],
        n: int | Sequence[int] = 1,
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(transforms, p=p, same_on_batch=same_on_batch, seed=seed)
        k = len(self.transforms)
        if isinstance(n, int) and not isinstance(n, bool):
            lo, hi = n, n
        elif isinstance(n, (list, tuple)) and len(n) == 2:
            lo, hi = n
        else:
            raise TypeError(f"n must be an int or a (min, max) pair of ints, got {n!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi)) or not 0 <= lo <= hi <= k:
            raise ValueError(f"n must be an int or (min, max) with 0 <= min <= max <= {k}, got {n!r}")
        self.n = (lo, hi)

    def sample_params(self, batch_size: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        out = self.output_size(size)
        if out != size and self.n[1] > 1:
            raise ValueError(
                f"SomeOf(n={self._init_args['n']!r}) may apply {self.n[1]} children to a sample, but its children change "
                f"the image size ({size} -> {out}) and each acts on the SomeOf's input: use n=1 or OneOf"
            )
        return super().sample_params(batch_size, size, generator)

    def _gates(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k = len(self.transforms)
        count = torch.randint(self.n[0], self.n[1] + 1, (n, 1), generator=generator)
        rank = torch.rand(n, k, generator=generator).argsort(dim=1).argsort(dim=1)
        return rank < count
