"""Photometric transforms: one fused per-sample colour map, blurs, noise and normalization.

Images are in 0..1 (uint8 inputs are scaled for you). Colour ops on 1-channel images apply
brightness and contrast only (saturation and hue leave a gray image unchanged, as in torchvision).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from kornia.enhance import adjust_hue
from kornia.filters import bilateral_blur, get_gaussian_kernel1d

from genaug.transforms.base import (
    MAX_EXTENT,
    Params,
    Transform,
    check_number,
    check_numbers,
    check_range,
    needs_autograd,
    scratch,
    stage_output,
    to_device,
    uniform,
)
from genaug.transforms.opencv_backend import OpenCVKernel, separable_filter

#: ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
LUMA = (0.2989, 0.587, 0.114)
# RGB -> YIQ; hue is a rotation of the chroma (I, Q) plane about the luma axis.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=torch.float64
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_RGB_TO_YIQ_NP, _YIQ_TO_RGB_NP = _RGB_TO_YIQ.numpy(), _YIQ_TO_RGB.numpy()
_LUMA_NP = np.array(LUMA)


def _factor_range(name: str, value: Any, *, center: float, low: float, high: float = float("inf")) -> tuple[float, float]:
    """torchvision's factor argument: ``d`` for ``(max(low, center - d), center + d)``, or a ``(min, max)``
    pair that must itself lie within ``[low, high]`` (a negative factor has no meaning)."""
    if isinstance(value, (list, tuple)):
        return check_range(name, value, low=low, high=high)
    lo, hi = check_range(name, value, center=center, low=-float("inf"), high=high)
    return max(lo, low), hi


def _hue_matrix_np(hue: torch.Tensor) -> np.ndarray:
    """``(B, 3, 3)`` RGB matrices (float64 NumPy) rotating hue by ``hue`` turns (torchvision's hue_factor
    units), for a CPU float64 ``hue`` (the angle's cosine and sine are torch's)."""
    angle = -2.0 * math.pi * hue
    cos, sin = torch.cos(angle).numpy(), torch.sin(angle).numpy()
    rot = np.zeros((hue.shape[0], 3, 3))
    rot[:, 0, 0] = 1.0
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    return _YIQ_TO_RGB_NP @ rot @ _RGB_TO_YIQ_NP


def gaussian_blur(
    image: torch.Tensor, kernel_size: tuple[int, int], sigma: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Separable Gaussian blur with per-sample ``sigma`` ``(B, 2)`` = (y, x) and reflect borders.

    The 1-D kernels are Kornia's (``get_gaussian_kernel1d``). On the CPU each pass is a sum of
    shifted slices weighted per sample (3x faster than a grouped convolution with one group per
    plane, which oneDNN runs poorly for many tiny groups); elsewhere it is the grouped
    convolution, which accelerators run as one depthwise kernel per pass. Same result either way
    (``tests/test_reference.py`` checks both against torchvision). ``out``: an optional contiguous
    tensor shaped like ``image`` (not sharing its memory) for the result (used on the CPU).

    Example:
        >>> import torch
        >>> x = torch.rand(2, 3, 8, 8)
        >>> gaussian_blur(x, (5, 5), torch.tensor([[1.0, 1.0], [0.5, 2.0]])).shape
        torch.Size([2, 3, 8, 8])
    """
    if image.numel() == 0:
        return image.clone()
    # The taps are computed where ``sigma`` lies (the CPU, for drawn parameters) and then moved:
    # on a GPU that is two small copies instead of ~20 tiny kernels.
    ky, kx = gaussian_taps(kernel_size, sigma.to(image.dtype))
    ky, kx = to_device(ky, image.device), to_device(kx, image.device)
    return separable_blur(image, ky, kx, out)


def gaussian_taps(kernel_size: tuple[int, int], sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kornia's 1-D Gaussian taps ``ky`` (B, kh) and ``kx`` (B, kw) for per-sample ``sigma`` (B, 2) = (y, x)."""
    (kh, kw) = kernel_size
    if kh == kw:  # one Kornia call for both axes (it costs ~0.15 ms whatever the batch size)
        ky, kx = get_gaussian_kernel1d(kh, sigma.reshape(-1, 1)).view(-1, 2, kh).unbind(1)
        return ky, kx
    return get_gaussian_kernel1d(kh, sigma[:, 0:1]), get_gaussian_kernel1d(kw, sigma[:, 1:2])


def separable_blur(image: torch.Tensor, ky: torch.Tensor, kx: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Filter along x with per-sample taps ``kx`` (B, kw) and along y with ``ky`` (B, kh), reflect borders.

    ``out``: an optional contiguous tensor shaped like ``image`` for the result on the CPU. Each
    radius must be smaller than the image's side along its axis (as for reflect padding).

    Example:
        >>> x = torch.rand(2, 3, 8, 8)
        >>> taps = torch.tensor([[0.25, 0.5, 0.25], [0.0, 1.0, 0.0]])
        >>> y = separable_blur(x, taps, taps)
        >>> torch.equal(y[1], x[1])  # the identity kernel
        True
    """
    b, c, h, w = image.shape
    ry, rx = ky.shape[1] // 2, kx.shape[1] // 2
    if ry >= max(h, 1) or rx >= max(w, 1):
        raise ValueError(f"blur kernel radius (y {ry}, x {rx}) must be smaller than the image size (h {h}, w {w})")
    if image.device.type != "cpu" or needs_autograd(image):  # the CPU path writes with out= (no autograd)
        return _blur_grouped_conv(image, ky, kx)
    # On the CPU: sums of shifted slices, each output ``sum_i k[i] * x[j - r + i]`` in the order of
    # ``i`` (the grouped convolution's numbers up to rounding, and bit for bit the same whatever the
    # other samples of the batch).
    wide = w + 2 * rx
    # The input with rx reflected columns on each side: the x pass then runs along whole planes
    # flattened, one long contiguous loop per tap. The outputs it computes in the padding columns
    # mix neighbouring rows; they are never read.
    cols = scratch("blur_cols", (b, c, h, wide), image.dtype, image.device)
    cols.narrow(3, rx, w).copy_(image)
    for i in range(1, rx + 1):
        cols.select(3, rx - i).copy_(image.select(3, i))  # column -i reads column i
        cols.select(3, rx + w - 1 + i).copy_(image.select(3, w - 1 - i))  # column w-1+i reads w-1-i
    # The x pass writes into the middle rows of a buffer with ry rows more at the top and the
    # bottom; those get the reflected rows, so the y pass is a sum of shifted slices of it.
    rows = scratch("blur_rows", (b, c, h + 2 * ry, wide), image.dtype, image.device)
    n = h * wide - 2 * rx
    _weighted_slices(cols.view(b, c, h * wide), kx, 2, rows.view(b, c, -1).narrow(2, ry * wide + rx, n))
    if ry:
        rows.narrow(2, 0, ry).copy_(rows.narrow(2, ry + 1, ry).flip(2))  # row -i reads row i
        rows.narrow(2, ry + h, ry).copy_(rows.narrow(2, h - 1, ry).flip(2))  # row h-1+i reads row h-1-i
    if out is None:
        out = torch.empty_like(image, memory_format=torch.contiguous_format)
    return _weighted_slices(rows.narrow(3, rx, w), ky, 2, out)


def _weighted_slices(source: torch.Tensor, kernel: torch.Tensor, dim: int, out: torch.Tensor) -> torch.Tensor:
    """``out[j] = sum_i kernel[:, i] * source[j + i]`` along ``dim``, summed in the order of ``i``."""
    taps = kernel.view(-1, *([1] * (source.dim() - 1)), kernel.shape[1])
    m = out.shape[dim]
    torch.mul(source.narrow(dim, 0, m), taps[..., 0], out=out)
    for i in range(1, kernel.shape[1]):
        out.addcmul_(source.narrow(dim, i, m), taps[..., i])
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


def apply_color_affine(image: torch.Tensor, a: torch.Tensor, t: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ pixel + t`` for every pixel, clamped to 0..1 (``a``: (B,C,C), ``t``: (B,C)).

    ``out``: an optional ``(B, C, H*W)`` tensor (not sharing memory with ``image``) for the result.
    """
    b, c = image.shape[:2]
    out = torch.bmm(a.to(image.dtype), image.reshape(b, c, -1), out=out)
    return out.add_(t.to(image.dtype).unsqueeze(-1)).clamp_(0.0, 1.0).view(image.shape)


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
        # (in NumPy: a torch op on a few numbers costs ~5 us, a NumPy op ~1 us)
        f64 = lambda k: params[k].detach().to(device="cpu", dtype=torch.float64)  # noqa: E731
        bright, contrast = f64("brightness").numpy(), f64("contrast").numpy()
        b = bright.shape[0]
        if channels == 3:
            sat = f64("saturation").numpy().reshape(b, 1, 1)
            m = sat * np.eye(3) + (1.0 - sat) * _LUMA_NP  # rows: s*x + (1-s)*gray
            if with_hue and self.hue != (0.0, 0.0):
                m = _hue_matrix_np(f64("hue")) @ m
        else:
            m = np.ones((b, 1, 1))
        # brightness x*b, then contrast c*x + (1-c)*mean gray of the brightened image, then m:
        # A = m*c*b and t = m @ 1 * (1-c)*b*gray(mean).
        a = m * (contrast * bright).reshape(b, 1, 1)
        u = m.sum(-1) * ((1.0 - contrast) * bright).reshape(b, 1)
        luma_d = to_device(torch.tensor(LUMA if channels == 3 else (1.0,), dtype=mean.dtype), mean.device)
        gray = (mean * luma_d).sum(-1, keepdim=True)
        a_t, u_t = torch.from_numpy(a), torch.from_numpy(u)
        return to_device(a_t, mean.device, mean.dtype), to_device(u_t, mean.device, mean.dtype) * gray

    def color_affine(self, params: Params, mean: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._affine(params, mean, channels, with_hue=True)

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        # Only reached in hue_mode="hsv": colour map without hue, then the exact HSV hue shift.
        mean = image.mean(dim=(2, 3)) if self.uses_mean else image.new_zeros(image.shape[:2])
        a, t = self._affine(params, mean, image.shape[1], with_hue=False)
        out = apply_color_affine(image, a, t)
        if image.shape[1] == 3:
            hue = to_device(params["hue"], image.device, image.dtype) * (2.0 * math.pi)
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
    """A positive odd int (square kernel) or ``(kh, kw)`` of them, each at most ``MAX_EXTENT``."""
    allowed = f"a positive odd int or a (kh, kw) pair of them, at most {MAX_EXTENT}"
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    ):
        raise TypeError(f"kernel_size must be {allowed}, got {value!r} ({type(value).__name__})")
    if not all(0 < v <= MAX_EXTENT and v % 2 == 1 for v in pair):
        raise ValueError(f"kernel_size must be {allowed}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_kernel_fits(name: str, kernel: tuple[int, int], size: tuple[int, int]) -> None:
    h, w = size
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

    clamps_to_unit_range = True

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
        _check_kernel_fits("RandomGaussianBlur", self.kernel_size, image.shape[-2:])
        sigma = params["sigma"].to(image.dtype)  # a CPU parameter: gaussian_blur moves the taps
        out = stage_output("blur_out", tuple(image.shape), image.dtype, image.device, avoid=image)
        # A convex combination of 0..1 values, up to rounding: clamp the last ulp back into range.
        return gaussian_blur(image, self.kernel_size, sigma.view(-1, 1).expand(-1, 2), out).clamp_(0.0, 1.0)

    def opencv_kernel(self, params: Params, size: tuple[int, int]) -> OpenCVKernel:
        _check_kernel_fits("RandomGaussianBlur", self.kernel_size, size)
        sigma = params["sigma"].to(device="cpu", dtype=torch.float32).view(-1, 1).expand(-1, 2)
        ky, kx = (k.numpy() for k in gaussian_taps(self.kernel_size, sigma))
        return lambda image, i: separable_filter(image, ky[i], kx[i])


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
        _check_kernel_fits("RandomBilateralBlur", self.kernel_size, image.shape[-2:])
        space = to_device(params["sigma_space"], image.device, image.dtype).view(-1, 1).expand(-1, 2)
        color = to_device(params["sigma_color"], image.device, image.dtype)
        return bilateral_blur(image, self.kernel_size, color, space).clamp_(0.0, 1.0)


class RandomGaussianNoise(Transform):
    """Add Gaussian noise with a standard deviation drawn per sample from ``std``.

    The noise is a pure function of each sample's ``params["noise_seed"]`` and the pixel position
    (a counter-based generator, see :meth:`apply`), so a batch equals each sample run alone, the
    device does not change it, and replaying params reproduces it exactly without storing it.

    Args:
        mean: mean of the noise, in [-1, 1].
        std: fixed std or ``(min, max)`` range within [0, 1] (0..1 units).
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
        # In 0..1 units: a shift beyond +-1 or a std above 1 turns any image into a constant or noise.
        self.mean = check_number("mean", mean, low=-1.0, high=1.0)
        self.std = check_range("std", std, low=0.0, high=1.0)
        if not isinstance(clip, bool):
            raise TypeError(f"clip must be a bool, got {clip!r} ({type(clip).__name__})")
        self.clip = clip

    def _sample(self, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
        # One seed per sample. Consecutive integers are enough: apply() hashes each seed into its own
        # noise stream, so neighbouring seeds give unrelated noise (tests/test_noise.py checks that). One
        # draw per call keeps the generator's stream, and so every later op's parameters, unchanged.
        seed = torch.randint(0, 2**62, (1,), generator=generator)
        return {"std": uniform(*self.std, n, generator), "noise_seed": seed + torch.arange(n)}

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        """Add ``mean + std[i] * noise[i]`` to each sample ``i``.

        ``noise[i]`` is standard normal noise that is a pure function of ``params["noise_seed"][i]``
        and of the position of the element in the sample (its flat index in ``(C, H, W)``). Why:

        * **batch independence** (genaug's defining property): a batch equals each sample run alone
          with its own params rows, whatever subset ``p < 1`` selects, however the CPU executor
          chunks a large batch. One ``torch.Generator`` seeded per call cannot give that: it draws
          one stream for the whole sub-batch, so a sample's noise would depend on its neighbours.
        * **device independence**: the random bits are integer tensor ops, identical on every
          device; only the float32 ``log``/``sqrt``/``cos``/``sin`` that shape them may differ
          between CPU and CUDA in the last bit. ``torch.randn`` uses a different algorithm per device.
        * **the meta device**: the whole computation is tensor ops on the image's device (the
          seeds are CPU tensors moved with ``non_blocking``), with no ``.item()`` and no device
          generator, so it runs, without a host sync, on ``meta`` as on CUDA.
        * **replay**: the params hold one seed per sample, not the noise, and reproduce it exactly.

        The generator is counter-based SplitMix64 (Steele, Lea & Flood, 2014): sample ``i`` gets
        the key ``k = mix64(seed + G)`` (SplitMix64's first output for its seed), and Box–Muller
        pair ``j`` of the sample the 64 bits ``z = mix64(k + (j + 1) * G)``, the ``j``-th output of
        a SplitMix64 stream seeded with ``k`` (``G`` = 0x9E3779B97F4A7C15, ``mix64`` Stafford's
        Mix13 finalizer). Different seeds start their streams at unrelated points of the 2^64
        cycle. In int64, ``+`` and ``*`` wrap exactly as uint64 does; ``>>`` is arithmetic, so each
        logical shift masks off the copied sign bits. ``z``'s top 24 bits as a signed integer
        ``s = z >> 40`` give ``u1 = (s + 2^23 + 1) / 2^24`` in ``[2^-24, 1]`` (never 0), its bits
        39..16 as an unsigned ``a`` the angle ``t = 2 pi a / 2^24`` in ``[0, 2 pi)``, both exact in
        float32; ``sqrt(-2 ln u1) * cos(t)`` is element ``j`` and ``sqrt(-2 ln u1) * sin(t)`` element
        ``j + ceil(n / 2)`` of the sample's ``n`` elements: two independent standard normals, so
        neighbouring elements never share a pair. ``|noise| <= sqrt(48 ln 2) = 5.77`` (a normal
        goes beyond that with probability 8e-9).

        The noise is computed in float32 for every image dtype (a float64 image gets the same
        noise as a float32 one). On the CPU the work goes in tiles of about 2^17 pairs of the
        ``(sample, pair)`` grid, so that its ~30 elementwise passes stay in cache (1.6x faster
        than whole-batch passes at B=256, 3x64x64). The loop runs over tiles of elements, not over
        samples, and every value is the same in any tiling; other devices take the whole batch
        as one tile.
        """
        gamma, mult1, mult2 = 0x9E3779B97F4A7C15 - 2**64, 0xBF58476D1CE4E5B9 - 2**64, 0x94D049BB133111EB - 2**64

        def mix64_(z: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
            """Stafford's Mix13 in place on int64 values read as uint64 (``tmp``: scratch like ``z``)."""
            for shift, mult in ((30, mult1), (27, mult2), (31, None)):
                torch.bitwise_right_shift(z, shift, out=tmp)
                z.bitwise_xor_(tmp.bitwise_and_((1 << (64 - shift)) - 1))  # z ^= z >>> shift (logical)
                if mult is not None:
                    z.mul_(mult)
            return z

        b, device = image.shape[0], image.device
        n = image[0].numel() if b else 0
        flat = image.reshape(b, n)
        out = torch.empty_like(flat, memory_format=torch.contiguous_format)
        if b == 0 or n == 0:
            return out.view(image.shape)
        m = (n + 1) // 2  # Box-Muller pairs per sample: pair j gives elements j and m + j
        seeds = params["noise_seed"].to(torch.int64).reshape(b)  # on the CPU: hashed there, then moved
        key = to_device(mix64_(seeds + gamma, torch.empty_like(seeds)), device).view(b, 1)
        std = to_device(params["std"], device, image.dtype).view(b, 1)
        counter = torch.arange(1, m + 1, dtype=torch.int64, device=device).mul_(gamma)

        def add_noise(r: slice, c: slice, noise: torch.Tensor) -> None:
            target = out[r, c]
            torch.addcmul(flat[r, c], noise, std[r], out=target)
            if self.mean != 0.0:
                target.add_(self.mean)
            if self.clip:
                target.clamp_(0.0, 1.0)

        tile = 1 << 17 if device.type == "cpu" else b * m  # pairs per tile: 2^17 was the fastest of 2^14..2^18
        rows = max(1, min(b, tile // m))
        cols = m if rows > 1 else min(m, tile)
        for r0 in range(0, b, rows):
            r = slice(r0, r0 + rows)
            for c0 in range(0, m, cols):
                c1 = min(m, c0 + cols)
                z = key[r] + counter[c0:c1]
                tmp = torch.empty_like(z)
                mix64_(z, tmp)
                u1 = torch.bitwise_right_shift(z, 40, out=tmp).to(torch.float32)  # top 24 bits, signed
                radius = u1.add_(2**23 + 1).mul_(2.0**-24).log_().mul_(-2.0).sqrt_()  # u1 in [2^-24, 1]
                angle = z.bitwise_right_shift_(16).bitwise_and_((1 << 24) - 1).to(torch.float32)  # bits 39..16
                angle.mul_(2.0 * math.pi * 2.0**-24)
                add_noise(r, slice(c0, c1), angle.cos().mul_(radius))
                s1 = min(c1, n - m)  # the sine half ends at element n - 1 (n odd: the last pair gives one value)
                if s1 > c0:
                    add_noise(r, slice(m + c0, m + s1), radius.mul_(angle.sin_())[:, : s1 - c0])
        return out.view(image.shape)


class Normalize(Transform):
    """Subtract ``mean`` and divide by ``std`` per channel (torchvision's ``Normalize``).

    The output is float (a uint8 input gives float32) and is not clamped; put it last.

    Args:
        mean: a list or tuple of finite numbers: one for all channels, or one per channel.
        std: as many positive finite numbers as ``mean``. The count is checked against the
            image's channels at the call.

    Example:
        >>> import torch, genaug as ga
        >>> out = ga.Normalize(mean=[0.5], std=[0.5])(torch.ones(1, 1, 2, 2))
        >>> out.flatten().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """

    produces_normalized = True
    needs_unit_range = False

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t, std_t = check_numbers("mean", mean), check_numbers("std", std, positive=True)
        if len(mean_t) != len(std_t):
            raise ValueError(
                f"mean and std must be of equal length (one value, or one per channel), got {len(mean_t)} mean "
                f"values {mean!r} and {len(std_t)} std values {std!r}"
            )
        self.mean, self.std = mean_t, std_t

    def apply(self, image: torch.Tensor, params: Params) -> torch.Tensor:
        c = image.shape[1]
        if len(self.mean) not in (1, c):
            raise ValueError(f"Normalize has {len(self.mean)} mean/std values but the image has {c} channels")
        mean = to_device(torch.tensor(self.mean, dtype=image.dtype), image.device).view(1, -1, 1, 1)
        std = to_device(torch.tensor(self.std, dtype=image.dtype), image.device).view(1, -1, 1, 1)
        return (image - mean) / std
