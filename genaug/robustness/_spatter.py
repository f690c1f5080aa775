"""The OpenCV steps of the published ``spatter`` (water) corruption, batched in torch.

``cv2.Canny(img, 50, 150)``, ``cv2.distanceTransform(DIST_L2, 5)``, ``cv2.threshold(TRUNC)``,
``cv2.blur(3x3)``, ``cv2.equalizeHist`` and ``cv2.filter2D(CV_8U)`` on 8-bit ``(B, H, W)`` images
held as float tensors of integer values. Each follows OpenCV's definition (integer arithmetic
where OpenCV uses it); see the functions for the details.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genaug.robustness._ops import border_index

# OpenCV's Canny: tan(22.5 deg) in 15-bit fixed point
_CANNY_SHIFT = 15
_TG22 = int(0.4142135623730950488016887242097 * (1 << _CANNY_SHIFT) + 0.5)


def _pad(x: torch.Tensor, r: int, mode: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    rows = border_index(torch.arange(-r, h + r), h, mode).to(x.device)
    cols = border_index(torch.arange(-r, w + r), w, mode).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def canny(img: torch.Tensor, low: float = 50, high: float = 150) -> torch.Tensor:
    """``cv2.Canny(img, low, high)`` (aperture 3, L1 gradient) on ``(B, H, W)``: bool edges.

    3x3 Sobel derivatives with replicated borders; magnitude ``|dx| + |dy|``; non-maximum
    suppression along the gradient quantised to 0/45/90/135 degrees with OpenCV's fixed-point
    ``tan 22.5`` test and its tie rule (strictly greater than one neighbour, greater or equal to
    the other); pixels above ``low`` that survive are candidates, those above ``high`` seeds; the
    edges are the candidates 8-connected to a seed (hysteresis, grown until nothing changes).
    """
    p = _pad(img, 1, "nearest")
    dx = (p[:, :-2, 2:] + 2 * p[:, 1:-1, 2:] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, 1:-1, :-2] + p[:, 2:, :-2])
    dy = (p[:, 2:, :-2] + 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:]) - (p[:, :-2, :-2] + 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:])
    mag = dx.abs() + dy.abs()
    mp = F.pad(mag, (1, 1, 1, 1), value=0.0)  # outside the image the magnitude is 0
    left, right, up, down = mp[:, 1:-1, :-2], mp[:, 1:-1, 2:], mp[:, :-2, 1:-1], mp[:, 2:, 1:-1]
    upleft, upright, downleft, downright = mp[:, :-2, :-2], mp[:, :-2, 2:], mp[:, 2:, :-2], mp[:, 2:, 2:]
    ax = dx.abs().to(torch.int64)
    ay = dy.abs().to(torch.int64) << _CANNY_SHIFT
    tg22x = ax * _TG22
    tg67x = tg22x + (ax << (_CANNY_SHIFT + 1))
    horizontal, vertical = ay < tg22x, ay > tg67x
    same_sign = (dx * dy) >= 0  # OpenCV: s = (xs ^ ys) < 0 ? -1 : 1
    diag = torch.where(same_sign, (mag > upleft) & (mag > downright), (mag > upright) & (mag > downleft))
    nms = torch.where(horizontal, (mag > left) & (mag >= right), torch.where(vertical, (mag > up) & (mag >= down), diag))
    candidate = nms & (mag > int(low))
    edges = candidate & (mag > int(high))
    while True:  # hysteresis: one host read per growth step
        grown = candidate & (F.max_pool2d(edges.unsqueeze(1).to(img.dtype), 3, 1, 1).squeeze(1) > 0)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def distance_transform(zero: torch.Tensor, cap: float = 20.0) -> torch.Tensor:
    """``min(cv2.distanceTransform(src, DIST_L2, 5), cap)`` where ``zero`` marks src's zero pixels.

    OpenCV's 5x5 chamfer metric: steps of 1 (axial), 1.4 (diagonal) and 2.1969 (knight's move), in
    its 16-bit fixed point; pixels outside the image are never sources. A distance ``<= cap`` is a
    path of at most ``cap`` steps, so ``ceil(cap)`` rounds of min-plus relaxation give every
    distance up to ``cap`` exactly (larger ones are cut to ``cap``, as the threshold then does).
    """
    a, b, c = (round(v * 65536) / 65536 for v in (1.0, 1.4, 2.1969))
    steps = [(0, 1, a), (0, -1, a), (1, 0, a), (-1, 0, a), (1, 1, b), (1, -1, b), (-1, 1, b), (-1, -1, b),
             (1, 2, c), (1, -2, c), (-1, 2, c), (-1, -2, c), (2, 1, c), (2, -1, c), (-2, 1, c), (-2, -1, c)]
    big = 4.0 * cap + 16
    d = torch.where(zero, 0.0, big).to(torch.float32)  # sums of 16-bit fixed-point steps up to ~30: exact
    h, w = d.shape[-2:]
    for _ in range(int(cap + 0.999999)):
        p = F.pad(d, (2, 2, 2, 2), value=big)
        new = d.clone()
        for dy, dx, cost in steps:
            torch.minimum(new, p[:, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w] + cost, out=new)
        d = new
    return d.clamp_(max=cap)


def box3(x: torch.Tensor) -> torch.Tensor:
    """``cv2.blur(x, (3, 3))``: the 3x3 mean with ``BORDER_REFLECT_101``."""
    p = _pad(x, 1, "mirror")
    h, w = x.shape[-2:]
    return sum(p[:, i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """``cv2.equalizeHist`` per image of ``(B, H, W)`` integer values 0..255.

    ``lut[v] = round(255 * (cdf[v] - n0) / (N - n0))`` with ``n0`` the count of the lowest value
    present (float32, round half to even as ``saturate_cast``); a constant image is unchanged.
    """
    b = x.shape[0]
    v = x.reshape(b, -1).to(torch.int64)
    total = v.shape[1]
    hist = torch.zeros(b, 256, dtype=torch.int64, device=x.device).scatter_add_(1, v, torch.ones_like(v))
    cdf = hist.cumsum(1)
    first = (hist > 0).to(torch.int64).argmax(1, keepdim=True)
    n0 = hist.gather(1, first)
    constant = n0 == total
    scale = torch.where(constant, 0, 255.0 / (total - n0).clamp(min=1).to(torch.float32)).to(torch.float32)
    lut = torch.round((cdf - n0).to(torch.float32) * scale).clamp_(0, 255)
    out = lut.gather(1, v).to(x.dtype)
    return torch.where(constant, v.to(x.dtype), out).view_as(x)


def emboss_u8(x: torch.Tensor) -> torch.Tensor:
    """``cv2.filter2D(x, cv2.CV_8U, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])``: integer sums, saturated."""
    p = _pad(x, 1, "mirror")
    h, w = x.shape[-2:]
    kernel = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))
    out = sum(kernel[i][j] * p[:, i:i + h, j:j + w] for i in range(3) for j in range(3) if kernel[i][j])
    return out.clamp_(0, 255)
