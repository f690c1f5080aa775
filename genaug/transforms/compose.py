"""Containers: Compose, RandomApply, OneOf, SomeOf — and the fusion they enable.

A container samples one gate per sample and child, folds it into each child's ``apply`` mask and
hands the flattened leaves to :func:`genaug.transforms.pipeline.run`, which fuses consecutive
geometric leaves into one warp and consecutive colour leaves into one colour map. Because gating
is only a mask, ``OneOf([RandomRotation(...), RandomAffine(...)])`` still costs one resampling.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from genaug.transforms.base import Params, Transform, expand_params


class ModuleStage(Transform):
    """Wraps a third-party batch callable (a ``kornia.augmentation`` module, any ``nn.Module``).

    It runs as an unfused pixel stage on the float 0..1 batch, keeps its own randomness, and is
    applied to every sample (its own ``p`` decides). It cannot be serialized or replayed exactly.
    """

    per_sample = False

    def __init__(self, module: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        if not callable(module):
            raise TypeError(f"module must be callable on a (B, C, H, W) tensor, got {type(module).__name__}")
        self.module = module

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        out = self.module(image)
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
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
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

    def _gates(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """``(n, len(transforms))`` bool: which children each sample runs (None: all of them)."""
        return None

    def sample_params(self, batch_size: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        n = 1 if self.same_on_batch else batch_size
        params: Params = {"apply": torch.rand(n, generator=generator) < self.p}
        gates = self._gates(n, generator)
        if gates is not None:
            params["gate"] = gates
        for i, t in enumerate(self.transforms):
            params[str(i)] = t.sample_params(n, size, generator)
            size = t.output_size(size)
        return expand_params(params, batch_size) if self.same_on_batch and batch_size != 1 else params

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


class OneOf(Compose):
    """Apply exactly one of ``transforms`` per sample, chosen with ``weights`` (uniform by default).

    Example:
        >>> import torch, genaug as ga
        >>> aug = ga.OneOf([ga.RandomRotation(30), ga.RandomAffine(0, shear=20)], seed=0)
        >>> aug(torch.rand(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
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
        if len(weights) != len(self.transforms) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f"weights must be {len(self.transforms)} non-negative numbers with a positive sum, got {weights!r}"
            )
        self.weights = torch.tensor([float(w) for w in weights], dtype=torch.float64)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return _check_same_output_size(self, size)

    def _gates(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if n == 0:
            return torch.zeros(0, len(self.transforms), dtype=torch.bool)
        choice = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return torch.nn.functional.one_hot(choice, len(self.transforms)).bool()

    def sample_params(self, batch_size: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        self.output_size(size)
        return super().sample_params(batch_size, size, generator)


class SomeOf(Compose):
    """Apply a random subset of ``transforms`` per sample (in their listed order).

    Args:
        n: how many to apply: an int, or a ``(min, max)`` range drawn per sample.

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
        lo, hi = (n, n) if isinstance(n, int) and not isinstance(n, bool) else tuple(n)  # type: ignore[misc]
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= k):
            raise ValueError(f"n must be an int or (min, max) with 0 <= min <= max <= {k}, got {n!r}")
        self.n = (lo, hi)

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return _check_same_output_size(self, size)

    def _gates(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k = len(self.transforms)
        count = torch.randint(self.n[0], self.n[1] + 1, (n, 1), generator=generator)
        rank = torch.rand(n, k, generator=generator).argsort(dim=1).argsort(dim=1)
        return rank < count

