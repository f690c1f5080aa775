"""Photometric transforms: one fused per-sample colour map, blurs, noise and normalization.

Images are in 0..1 (uint8 inputs are scaled for you). Colour ops on 1-channel images apply
brightness and contrast only (saturation and hue leave a gray image unchanged, as in torchvision).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from kornia.enhance import adjust_hue
from kornia.filters import bilateral_blur, get_gaussian_kernel1d

from genaug.transforms.base import Params, Transform, check_range, uniform

#: ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
LUMA = (0.2989, 0.587, 0.114)
# RGB -> YIQ; hue is a rotation of the chroma (I, Q) plane about the luma axis.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_EYE3 = torch.eye(3, dtype=torch.float64)


def _factor_range(name: str, value: Any, *, center: float, low: float, high: float = float("inf")) -> tuple[float, float]:
    lo, hi = check_range(name, value, center=center, low=-float("inf"), high=high)
    return max(lo, low), hi


def hue_matrix(hue: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` RGB matrices rotating hue by ``hue`` turns (torchvision's hue_factor units)."""
    angle = -2.0 * math.pi * hue.to(torch.float64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(hue.shape[0], 3, 3, dtype=torch.float64, device=hue.device)
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    yiq_to_rgb, rgb_to_yiq = _YIQ_TO_RGB.to(hue.device), _RGB_TO_YIQ.to(hue.device)
    return yiq_to_rgb @ rot @ rgb_to_yiq


def gaussian_blur(image: torch.Tensor, kernel_size: tuple[int, int], sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with per-sample ``sigma`` ``(B, 2)`` = (y, x) and reflect borders.

    The 1-D kernels are Kornia's (``get_gaussian_kernel1d``). On the CPU each pass is a sum of
    shifted slices weighted per sample (3x faster than a grouped convolution with one group per
    plane, which oneDNN runs poorly for many tiny groups); elsewhere it is the grouped
    convolution, which accelerators run as one depthwise kernel per pass. Same result either way
    (``tests/test_reference.py`` checks both against torchvision).

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 8, 8)
        >>> gaussian_blur(x, (5, 5), torch.tensor([[1.0, 1.0], [0.5, 2.0]])).shape
        torch.Size([2, 3, 8, 8])
    """
    if image.numel() == 0:
        return image.clone()
    (kh, kw) = kernel_size
    sigma = sigma.to(device=image.device, dtype=image.dtype)
    if kh == kw:  # one Kornia call for both axes (it costs ~0.15 ms whatever the batch size)
        ky, kx = get_gaussian_kernel1d(kh, sigma.reshape(-1, 1)).view(-1, 2, kh).unbind(1)
    else:
        ky = get_gaussian_kernel1d(kh, sigma[:, 0:1])  # (B, kh)
        kx = get_gaussian_kernel1d(kw, sigma[:, 1:2])  # (B, kw)
    return separable_blur(image, ky, kx)


def separable_blur(image: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
    """Filter rows with per-sample taps ``ky`` (B, kh) and columns with ``kx`` (B, kw), reflect borders."""
    if image.device.type == "cpu":
        return _blur_pass(_blur_pass(image, kx, dim=3), ky, dim=2)
    return _blur_grouped_conv(image, ky, kx)


def _blur_pass(image: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """Filter along ``dim`` (2 = rows, 3 = columns) with per-sample taps ``kernel`` (B, k)."""
    k = kernel.shape[1]
    r, n = k // 2, image.shape[dim]
    if r == 0:
        return image * kernel.view(-1, 1, 1, 1)
    padded = F.pad(image, (r, r, 0, 0) if dim == 3 else (0, 0, r, r), mode="reflect")
    taps = kernel.view(-1, 1, 1, 1, k)
    out = padded.narrow(dim, 0, n) * taps[..., 0]
    for i in range(1, k):
        out.addcmul_(padded.narrow(dim, i, n), taps[..., i])
    return out


def _blur_grouped_conv(image: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
    """The same separable blur as two grouped convolutions (one group per image plane)."""
    b, c, h, w = image.shape
    kh, kw = ky.shape[1], kx.shape[1]
    ry, rx = kh // 2, kw // 2
    ky = ky.repeat_interleave(c, dim=0).view(b * c, 1, kh, 1)
    kx = kx.repeat_interleave(c, dim=0).view(b * c, 1, 1, kw)
    padded = F.pad(image, (rx, rx, ry, ry), mode="reflect") if rx or ry else image
    planes = padded.reshape(1, b * c, h + 2 * ry, w + 2 * rx)
    out = F.conv2d(F.conv2d(planes, kx, groups=b * c), ky, groups=b * c)
    return out.view(b, c, h, w)


def apply_color_affine(image: torch.Tensor, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``a @ pixel + t`` for every pixel, clamped to 0..1 (``a``: (B,C,C), ``t``: (B,C))."""
    b, c = image.shape[:2]
    out = torch.bmm(a.to(image.dtype), image.reshape(b, c, -1))
    return out.add_(t.to(image.dtype).unsqueeze(-1)).clamp_(0.0, 1.0).view_as(image)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue as one per-sample colour matrix.

    Arguments follow torchvision's ``ColorJitter``: ``brightness=b`` draws a factor from
    ``(max(0, 1-b), 1+b)`` (a pair gives the range itself), likewise contrast and saturation;
    ``hue=h`` draws a hue shift from ``(-h, h)`` with ``0 <= h <= 0.5`` (in turns).

    The four steps are applied in that fixed order as one affine colour map, in one pass, with a
    single clamp at the end (torchvision clamps after each step and shuffles the order). Each
    step alone equals torchvision's ``adjust_*``. Hue is a rotation about the luma axis in YIQ,
    which keeps luma; ``hue_mode="hsv"`` applies torchvision's exact HSV hue shift instead
    (a separate pass, not fused with neighbouring colour ops).

    Example:
        >>> import torch, genaug as ga
        >>> jitter = ga.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, seed=0)
        >>> jitter(torch.rand(8, 3, 16, 16)).shape
        torch.Size([8, 3, 16, 16])
    """

    kind = "color"
    needs_color_channels = True

    def __init__(
        self,
        brightness: float | Sequence[float] = 0.0,
        contrast: float | Sequence[float] = 0.0,
        saturation: float | Sequence[float] = 0.0,
        hue: float | Sequence[float] = 0.0,
        hue_mode: str = "yiq",
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        self.brightness = _factor_range("brightness", brightness, center=1.0, low=0.0)
        self.contrast = _factor_range("contrast", contrast, center=1.0, low=0.0)
        self.saturation = _factor_range("saturation", saturation, center=1.0, low=0.0)
        self.hue = check_range("hue", hue, center=0.0, low=-0.5, high=0.5)
        if hue_mode not in ("yiq", "hsv"):
            raise ValueError(f"hue_mode must be 'yiq' (fused, luma-preserving) or 'hsv' (exact), got {hue_mode!r}")
        self.hue_mode = hue_mode
        self.kind = "pixel" if hue_mode == "hsv" else "color"
        self.uses_mean = self.contrast != (1.0, 1.0)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {
            "brightness": uniform(*self.brightness, n, generator),
            "contrast": uniform(*self.contrast, n, generator),
            "saturation": uniform(*self.saturation, n, generator),
            "hue": uniform(*self.hue, n, generator),
        }

    def _affine(
        self, params: Params, mean: torch.Tensor, channels: int, with_hue: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Everything but the image mean is a function of the params: built on the CPU in float64
        # (B x 9 numbers), then moved once; the device only does the mean-dependent product.
        f64 = lambda k: params[k].to(device="cpu", dtype=torch.float64)  # noqa: E731
        bright, contrast = f64("brightness"), f64("contrast")
        b = bright.shape[0]
        if channels == 3:
            sat = f64("saturation").view(b, 1, 1)
            luma = torch.tensor(LUMA, dtype=torch.float64)
            m = sat * _EYE3 + (1.0 - sat) * luma  # rows: s*x + (1-s)*gray
            if with_hue and self.hue != (0.0, 0.0):
                m = hue_matrix(f64("hue")) @ m
        else:
            m = torch.ones(b, 1, 1, dtype=torch.float64)
        # brightness x*b, then contrast c*x + (1-c)*mean gray of the brightened image, then m:
        # A = m*c*b and t = m @ 1 * (1-c)*b*gray(mean).
        a = m * (contrast * bright).view(b, 1, 1)
        u = m.sum(-1) * ((1.0 - contrast) * bright).view(b, 1)
        luma_d = torch.tensor(LUMA if channels == 3 else (1.0,), device=mean.device, dtype=mean.dtype)
        gray = (mean * luma_d).sum(-1, keepdim=True)
        to = dict(device=mean.device, dtype=mean.dtype, non_blocking=True)
        return a.to(**to), u.to(**to) * gray

    def color_affine(self, params: Params, mean: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._affine(params, mean, channels, with_hue=True)

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        # Only reached in hue_mode="hsv": colour map without hue, then the exact HSV hue shift.
        mean = image.mean(dim=(2, 3)) if self.uses_mean else image.new_zeros(image.shape[:2])
        a, t = self._affine(params, mean, image.shape[1], with_hue=False)
        out = apply_color_affine(image, a, t)
        if image.shape[1] == 3:
            hue = params["hue"].to(device=image.device, dtype=image.dtype) * (2.0 * math.pi)
            out = adjust_hue(out, hue).clamp_(0.0, 1.0)
        return out


class RandomBrightness(ColorJitter):
    """Multiply by a factor drawn from ``brightness`` (torchvision's ``adjust_brightness``).

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomBrightness(0.5, seed=0)(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, brightness: float | Sequence[float] = 0.2, p: float = 1.0, same_on_batch: bool = False, seed: int | None = None) -> None:
        super().__init__(brightness=brightness, p=p, same_on_batch=same_on_batch, seed=seed)


class RandomContrast(ColorJitter):
    """Blend with the mean gray level by a factor drawn from ``contrast`` (``adjust_contrast``).

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomContrast(0.5, seed=0)(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, contrast: float | Sequence[float] = 0.2, p: float = 1.0, same_on_batch: bool = False, seed: int | None = None) -> None:
        super().__init__(contrast=contrast, p=p, same_on_batch=same_on_batch, seed=seed)


class RandomSaturation(ColorJitter):
    """Blend with the pixel's gray value by a factor drawn from ``saturation`` (``adjust_saturation``).

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomSaturation(0.5, seed=0)(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(self, saturation: float | Sequence[float] = 0.2, p: float = 1.0, same_on_batch: bool = False, seed: int | None = None) -> None:
        super().__init__(saturation=saturation, p=p, same_on_batch=same_on_batch, seed=seed)


class RandomHue(ColorJitter):
    """Shift hue by a fraction of a turn drawn from ``hue`` (``0 <= hue <= 0.5``).

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomHue(0.1, seed=0)(torch.rand(2, 3, 4, 4)).shape
        torch.Size([2, 3, 4, 4])
    """

    def __init__(
        self,
        hue: float | Sequence[float] = 0.1,
        hue_mode: str = "yiq",
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(hue=hue, hue_mode=hue_mode, p=p, same_on_batch=same_on_batch, seed=seed)


def _kernel_size(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 2 == 1 for v in value)
    ):
        raise ValueError(f"kernel_size must be a positive odd int or a pair of them, got {value!r}")
    return int(value[0]), int(value[1])


def _check_kernel_fits(name: str, kernel: tuple[int, int], image: torch.Tensor) -> None:
    h, w = image.shape[-2:]
    if kernel[0] > 2 * h - 1 or kernel[1] > 2 * w - 1:
        raise ValueError(f"{name} kernel_size {kernel} is too large for a {h}x{w} image with reflect padding")


class RandomGaussianBlur(Transform):
    """Gaussian blur with a sigma drawn per sample from ``sigma`` (torchvision's ``GaussianBlur``).

    Args:
        kernel_size: odd int or ``(kh, kw)``.
        sigma: ``(min, max)`` or a fixed number, in pixels.

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomGaussianBlur(kernel_size=5, sigma=(0.1, 2.0), seed=0)(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        sigma: float | Sequence[float] = (0.1, 2.0),
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        self.kernel_size = _kernel_size(kernel_size)
        self.sigma = check_range("sigma", sigma, low=1e-6)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {"sigma": uniform(*self.sigma, n, generator)}

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        _check_kernel_fits("RandomGaussianBlur", self.kernel_size, image)
        sigma = params["sigma"].to(device=image.device, dtype=image.dtype, non_blocking=True)
        # A convex combination of 0..1 values, up to rounding: clamp the last ulp back into range.
        return gaussian_blur(image, self.kernel_size, sigma.view(-1, 1).expand(-1, 2)).clamp_(0.0, 1.0)


class RandomBilateralBlur(Transform):
    """Edge-preserving bilateral blur (Kornia's kernel) with per-sample colour and space sigmas.

    Args:
        kernel_size: odd int or ``(kh, kw)``.
        sigma_color: range of the colour sigma, in 0..1 intensity units.
        sigma_space: range of the spatial sigma, in pixels.

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomBilateralBlur(5, seed=0)(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int] = 5,
        sigma_color: float | Sequence[float] = (0.05, 0.2),
        sigma_space: float | Sequence[float] = (0.5, 2.0),
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        self.kernel_size = _kernel_size(kernel_size)
        self.sigma_color = check_range("sigma_color", sigma_color, low=1e-6)
        self.sigma_space = check_range("sigma_space", sigma_space, low=1e-6)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        return {
            "sigma_color": uniform(*self.sigma_color, n, generator),
            "sigma_space": uniform(*self.sigma_space, n, generator),
        }

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        _check_kernel_fits("RandomBilateralBlur", self.kernel_size, image)
        to = dict(device=image.device, dtype=image.dtype, non_blocking=True)
        space = params["sigma_space"].to(**to).view(-1, 1).expand(-1, 2)
        return bilateral_blur(image, self.kernel_size, params["sigma_color"].to(**to), space).clamp_(0.0, 1.0)


class RandomGaussianNoise(Transform):
    """Add Gaussian noise with a standard deviation drawn per sample from ``std``.

    The noise field comes from a generator on the image's device seeded by ``params["noise_seed"]``,
    so replaying params reproduces it exactly without storing it.

    Args:
        mean: mean of the noise.
        std: fixed std or ``(min, max)`` range, in 0..1 units.
        clip: clamp the result to 0..1 (torchvision's ``GaussianNoise(clip=True)``).

    Example:
        >>> import torch, genaug as ga
        >>> ga.RandomGaussianNoise(std=(0.01, 0.1), seed=0)(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """

    def __init__(
        self,
        mean: float = 0.0,
        std: float | Sequence[float] = (0.01, 0.1),
        clip: bool = True,
        p: float = 1.0,
        same_on_batch: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__(p=p, same_on_batch=same_on_batch, seed=seed)
        if isinstance(mean, bool) or not isinstance(mean, (int, float)):
            raise TypeError(f"mean must be a number, got {mean!r}")
        self.mean = float(mean)
        self.std = check_range("std", std, low=0.0)
        self.clip = bool(clip)

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        seed = torch.randint(0, 2**62, (1,), generator=generator)
        # One seed per sample (consecutive): a sub-batch (p < 1, or a chunk of a large CPU batch)
        # draws its noise field from its first sample's seed, so no two sub-batches repeat a field.
        return {"std": uniform(*self.std, n, generator), "noise_seed": seed + torch.arange(n)}

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        seeds = params["noise_seed"]
        seed = int(seeds.view(-1)[0].cpu()) if seeds.numel() else 0  # a CPU tensor: no device sync
        gen = torch.Generator(device=image.device).manual_seed(seed)
        noise = torch.randn(image.shape, generator=gen, device=image.device, dtype=image.dtype)
        std = params["std"].to(device=image.device, dtype=image.dtype, non_blocking=True).view(-1, 1, 1, 1)
        out = image + self.mean + std * noise
        return out.clamp_(0.0, 1.0) if self.clip else out


class Normalize(Transform):
    """Subtract ``mean`` and divide by ``std`` per channel (torchvision's ``Normalize``).

    The output is float (a uint8 input gives float32) and is not clamped; put it last.

    Example:
        >>> import torch, genaug as ga
        >>> out = ga.Normalize(mean=[0.5], std=[0.5])(torch.ones(1, 1, 2, 2))
        >>> out.flatten().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """

    produces_normalized = True

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t, std_t = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean_t) != len(std_t) or not mean_t:
            raise ValueError(f"mean and std must be non-empty and of equal length, got {mean!r} and {std!r}")
        if any(s <= 0 for s in std_t):
            raise ValueError(f"std values must be positive, got {std!r}")
        self.mean, self.std = mean_t, std_t

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        c = image.shape[1]
        if len(self.mean) not in (1, c):
            raise ValueError(f"Normalize has {len(self.mean)} mean/std values but the image has {c} channels")
        mean = torch.tensor(self.mean, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=image.dtype, device=image.device).view(1, -1, 1, 1)
        return (image - mean) / std
