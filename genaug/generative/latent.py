"""Latent-space interpolation: linear (``lerp``) and spherical (``slerp``)."""

from __future__ import annotations

import torch


def _weights(t: float | torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
    """``t`` as a tensor that broadcasts against the latents: a scalar, T weights for one latent
    (-> (T, 1)), or one weight per row of batched latents, shaped (B, 1)."""
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    if t.dim() == 1 and z0.dim() == 1:
        return t[:, None]
    if t.dim() == 0 or (t.dim() == z0.dim() and t.shape[-1] == 1 and t.shape[:-1] == z0.shape[:-1]):
        return t
    raise ValueError(f"t must be a float, a 1-D tensor when z0/z1 are 1-D latents, or one weight per row "
                     f"shaped {(*z0.shape[:-1], 1)}; got shape {tuple(t.shape)}")


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation ``(1 - t) * z0 + t * z1``.

    Args:
        z0, z1: latents of the same shape, e.g. (Z,) or (B, Z).
        t: a float, or a 1-D tensor of T weights (latents (Z,) -> result (T, Z)), or one
            weight per row of batched latents (B, Z), shaped (B, 1).

    Returns:
        The interpolated latents.

    Example:
        >>> lerp(torch.zeros(2), torch.ones(2), torch.tensor([0.0, 0.5, 1.0]))
        tensor([[0.0000, 0.0000],
                [0.5000, 0.5000],
                [1.0000, 1.0000]])
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape; got {tuple(z0.shape)} and {tuple(z1.shape)}")
    t = _weights(t, z0)
    return z0 + t * (z1 - z0)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the great circle between ``z0`` and ``z1`` (last dim).

    Keeps Gaussian latents at a typical norm, unlike ``lerp`` whose midpoints shrink.
    Falls back to ``lerp`` where the two latents are (anti)parallel within ``eps``.

    Args:
        z0, z1: latents of the same shape (..., Z).
        t: a float, or a 1-D tensor of T weights (latents (Z,) -> result (T, Z)), or one
            weight per row of batched latents (B, Z), shaped (B, 1).
        eps: tolerance for the parallel fallback.

    Returns:
        The interpolated latents; ``t=0`` gives ``z0`` and ``t=1`` gives ``z1``.

    Example:
        >>> z = slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
        >>> torch.allclose(z, torch.tensor([0.7071, 0.7071]), atol=1e-4)
        True
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape; got {tuple(z0.shape)} and {tuple(z1.shape)}")
    t = _weights(t, z0)
    n0 = z0 / z0.norm(dim=-1, keepdim=True).clamp_min(eps)
    n1 = z1 / z1.norm(dim=-1, keepdim=True).clamp_min(eps)
    dot = (n0 * n1).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    safe = so.abs() > eps
    so_safe = torch.where(safe, so, torch.ones_like(so))
    out = (torch.sin((1 - t) * omega) / so_safe) * z0 + (torch.sin(t * omega) / so_safe) * z1
    return torch.where(safe, out, z0 + t * (z1 - z0))


def interpolate(model: torch.nn.Module, z0: torch.Tensor, z1: torch.Tensor, steps: int,
                labels: int | torch.Tensor | None = None, method: str = "slerp") -> torch.Tensor:
    """Decode ``steps`` latents between ``z0`` and ``z1`` (each (Z,)) with a GAN or VAE.

    Args:
        model: :class:`ConditionalGAN` or :class:`ConditionalVAE`.
        z0, z1: end-point latents (Z,).
        steps: number of images (>= 2).
        labels: class for every image (conditional models).
        method: ``"slerp"`` or ``"lerp"``.

    Returns:
        Images in [0, 1], (steps, C, H, W).
    """
    if method not in ("slerp", "lerp"):
        raise ValueError(f"method={method!r}; allowed: ('slerp', 'lerp')")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps={steps!r} must be an int >= 2")
    t = torch.linspace(0, 1, steps)
    z = (slerp if method == "slerp" else lerp)(z0.float().cpu(), z1.float().cpu(), t)
    if isinstance(labels, int):
        labels = torch.full((steps,), labels, dtype=torch.long)
    # Both run in inference mode (eval, no_grad) on their own.
    return model.generate(z, labels) if hasattr(model, "generate") else model.decode(z, labels)
