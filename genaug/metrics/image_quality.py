"""Full-reference image quality: PSNR and SSIM, e.g. of VAE reconstructions against their inputs.

Both are computed per image in float64 on images scaled to [0, 1] (uint8 is divided by 255; the
values equal scikit-image's on the uint8 images with ``data_range=255``), with torchmetrics'
kernels:

* :func:`psnr`: ``10 log10(1 / MSE)`` per image (``inf`` for identical images).
* :func:`ssim`: Wang et al.'s SSIM with an 11x11 Gaussian window (sigma 1.5), averaged over the
  pixels whose window lies inside the image. This is scikit-image's
  ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``
  and the original MATLAB code; torchmetrics' own ``structural_similarity_index_measure`` also
  averages the border pixels of a reflect-padded image, which moves small images' scores
  (0.9475 vs 0.9493 on a noisy 28x28 digit), so genaug crops that border.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from .inputs import Images, first_shape, iter_batches, num_images


def _pairs(reference: Images, test: Images, batch_size: int):
    shapes = first_shape(reference, "reference"), first_shape(test, "test")
    if shapes[0] != shapes[1]:
        (a, b, c), (d, e, f) = shapes
        raise ValueError(f"reference images are {a}x{b}x{c} but test images are {d}x{e}x{f} "
                         "(channels x height x width); compare images of the same shape")
    n_ref, n_test = num_images(reference, "reference"), num_images(test, "test")
    if n_ref != n_test:
        raise ValueError(f"reference has {n_ref} images but test has {n_test}; PSNR/SSIM compare image i of one "
                         "with image i of the other")
    f64 = torch.float64
    for (x, _), (y, _) in zip(iter_batches(reference, batch_size, "reference", f64),
                              iter_batches(test, batch_size, "test", f64)):
        yield x, y.to(x.device)


def _reduce(values: torch.Tensor, reduction: str) -> float | torch.Tensor:
    if reduction == "mean":
        return float(values.mean())
    if reduction == "none":
        return values
    raise ValueError(f"reduction={reduction!r} is not allowed; allowed: 'mean', 'none'")


def psnr(reference: Images, test: Images, *, reduction: Literal["mean", "none"] = "mean",
         batch_size: int = 512) -> float | torch.Tensor:
    """Peak signal-to-noise ratio (dB) of ``test`` against ``reference``, per image.

    Args:
        reference: the original images: tensor ``(N, C, H, W)`` uint8 or float in [0, 1],
            ``(images, labels)`` or Dataset.
        test: the images to score (e.g. reconstructions), same shape and count.
        reduction: ``"mean"`` (mean over images; ``inf`` if any pair is identical) or
            ``"none"`` (float64 tensor ``(N,)``).
        batch_size: images per batch.

    Returns:
        Mean PSNR (float) or per-image PSNRs.

    Example:
        >>> a = torch.zeros(1, 1, 4, 4)
        >>> round(psnr(a, a + 0.1), 4)
        20.0
    """
    from torchmetrics.functional import mean_squared_error

    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction={reduction!r} is not allowed; allowed: 'mean', 'none'")
    # torchmetrics' MSE per image (float64, as the images), then 10 log10(1 / MSE) in float64:
    # its peak_signal_noise_ratio converts to decibels with a float32 constant, 4.5e-8 relative
    # (3e-6 dB at 70 dB), above this function's documented 1e-6 dB agreement with scikit-image.
    vals = []
    for x, y in _pairs(reference, test, batch_size):
        mse = mean_squared_error(y.flatten(1).T, x.flatten(1).T, num_outputs=x.shape[0]).reshape(-1)
        vals.append(-10.0 * torch.log10(mse).cpu())
    return _reduce(torch.cat(vals), reduction)


def ssim(reference: Images, test: Images, *, sigma: float = 1.5, reduction: Literal["mean", "none"] = "mean",
         batch_size: int = 512) -> float | torch.Tensor:
    """Structural similarity (Wang et al. 2004) of ``test`` against ``reference``, per image.

    Gaussian window of ``2 * round(3.5 * sigma) + 1`` pixels (11 for sigma 1.5), ``K1=0.01``,
    ``K2=0.03``, data range 1; the mean over the pixels (and channels) whose window fits inside
    the image, as scikit-image computes it.

    Args:
        reference, test: as in :func:`psnr`; images must be at least as large as the window.
        sigma: the Gaussian window's standard deviation.
        reduction: ``"mean"`` or ``"none"``.
        batch_size: images per batch.

    Returns:
        Mean SSIM (float, <= 1) or per-image values.

    Example:
        >>> x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x)
        1.0
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction={reduction!r} is not allowed; allowed: 'mean', 'none'")
    if not (isinstance(sigma, (int, float)) and sigma > 0):
        raise ValueError(f"sigma={sigma!r} must be a positive number")
    win = int(3.5 * sigma + 0.5) * 2 + 1          # torchmetrics' and scikit-image's window for this sigma
    pad = (win - 1) // 2
    _, h, w = first_shape(reference, "reference")
    if min(h, w) < win:
        raise ValueError(f"images are {h}x{w} but SSIM's Gaussian window (sigma={sigma}) is {win}x{win}; "
                         f"images must be at least {win}x{win} (or use a smaller sigma)")
    vals = []
    for x, y in _pairs(reference, test, batch_size):
        _, full = structural_similarity_index_measure(y, x, gaussian_kernel=True, sigma=float(sigma), kernel_size=win,
                                                      data_range=1.0, reduction="none", return_full_image=True)
        vals.append(full[..., pad:h - pad, pad:w - pad].mean(dim=(1, 2, 3)).cpu())
    return _reduce(torch.cat(vals), reduction)


def reconstruction_quality(model: Any, data: Images, *, batch_size: int = 500,
                           device: str | torch.device | None = None) -> dict[str, Any]:
    """PSNR and SSIM of a VAE's reconstructions (encode, decode the posterior mean) of ``data``.

    Args:
        model: anything with ``reconstruct(images, labels)`` returning images in [0, 1]
            (e.g. :class:`~genaug.generative.ConditionalVAE`).
        data: the images to reconstruct, with labels for a conditional model
            (``(images, labels)`` or a labelled Dataset).
        batch_size: images per forward pass.
        device: where the model runs (default: where it is).

    Returns:
        ``{"psnr": mean dB, "ssim": mean, "psnr_per_image": tensor, "ssim_per_image": tensor,
        "labels": tensor or None}``.
    """
    if not hasattr(model, "reconstruct"):
        raise TypeError(f"model {type(model).__name__} has no reconstruct(); PSNR/SSIM of reconstructions need a VAE")
    if device is not None:
        model = model.to(device)
    originals, recons, labels = [], [], []
    for x, y in iter_batches(data, batch_size, "data"):       # float32: what the model computes in
        needs_labels = getattr(getattr(model, "config", None), "num_classes", 0)
        if needs_labels and y is None:
            raise ValueError("data has no labels but the model is conditional; pass (images, labels) or a labelled "
                             "Dataset")
        originals.append(x.cpu().double())
        recons.append(model.reconstruct(x, labels=y).float().cpu())
        labels.append(y)
    ref, rec = torch.cat(originals), torch.cat(recons)
    p, s = psnr(ref, rec, reduction="none"), ssim(ref, rec, reduction="none")
    lab = torch.cat(labels) if all(y is not None for y in labels) else None
    return {"psnr": float(p.mean()), "ssim": float(s.mean()), "psnr_per_image": p, "ssim_per_image": s,
            "labels": lab}
