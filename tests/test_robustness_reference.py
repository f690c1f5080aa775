"""Each corruption against a per-image reference written from the published code (Hendrycks &
Dietterich 2019, ``make_cifar_c.py`` / ``make_tinyimagenet_c.py`` / ``make_imagenet_c.py``) in
NumPy / SciPy / PIL (OpenCV where the published code calls it and it is installed).

Random corruptions are checked two ways: the distribution their parameters set (noise std per
severity, Poisson mean and variance, impulse fractions), and, where the randomness is only an
input to deterministic published steps, the full output for the *same* random draws (the tests
take them from genaug's counter-based fields and run the published steps on them in NumPy).
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from genaug.robustness import _random, corrupt
from genaug.robustness import frost as frost_module
from genaug.robustness.corruptions import apply_corruption
from genaug.robustness.tables import FOG_MAP_SIZE, FROST_RESIZE, TABLES

TABLE_NAMES = ("cifar", "tiny-imagenet", "imagenet")
SEVERITIES = (1, 2, 3, 4, 5)


def _image(h=40, w=37, c=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, c, 5, 6, generator=g, dtype=torch.float64)
    smooth = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return (0.7 * smooth + 0.3 * torch.rand(1, c, h, w, generator=g, dtype=torch.float64)).to(dtype)


def _hwc(x):
    return x[0].permute(1, 2, 0).numpy().astype(np.float64)


def _run(x, name, severity, table, seed=7):
    seeds = torch.tensor([seed])
    return apply_corruption(x, name, severity, table, seeds), seeds


# ----------------------------------------------------------------------------- noise: distributions


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_gaussian_and_speckle_noise_std_per_severity(table):
    x = torch.full((1, 3, 96, 96), 0.5, dtype=torch.float64)
    rng = np.random.default_rng(0)
    for s in SEVERITIES:
        c = TABLES[table]["gaussian_noise"][s - 1]
        y = corrupt(x, "gaussian_noise", s, generator=torch.Generator().manual_seed(s), table=table)
        ref = np.clip(0.5 + rng.normal(size=200_000, scale=c), 0, 1)  # the script's formula
        assert float((y - x).std()) == pytest.approx(ref.std(), rel=0.03)
        c = TABLES[table]["speckle_noise"][s - 1]
        y = corrupt(x, "speckle_noise", s, generator=torch.Generator().manual_seed(s), table=table)
        ref = np.clip(0.5 + 0.5 * rng.normal(size=200_000, scale=c), 0, 1)
        assert float((y - x).std()) == pytest.approx(ref.std(), rel=0.03)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_shot_noise_is_poisson_counts_over_c(table):
    for s in SEVERITIES:
        c = TABLES[table]["shot_noise"][s - 1]
        for level in (0.02, 0.45):  # both samplers: lam < 10 (inversion) and lam >= 10 (rejection) where c allows
            x = torch.full((1, 3, 64, 64), level, dtype=torch.float64)
            y = corrupt(x, "shot_noise", s, generator=torch.Generator().manual_seed(s), table=table)
            counts = (y * c).numpy()
            assert np.allclose(counts, np.round(counts), atol=1e-4)  # k / c for integers k
            lam = level * c
            if lam / c + 4 * np.sqrt(lam) / c < 1:  # no clipping at 1 to speak of
                assert counts.mean() == pytest.approx(lam, rel=0.05, abs=0.01)
                assert counts.var() == pytest.approx(lam, rel=0.1, abs=0.01)


def test_poisson_matches_numpy_distribution():
    lam = torch.tensor([[0.3, 4.0, 9.99, 10.0, 37.5, 500.0]], dtype=torch.float64).repeat(1, 20000)
    k = _random.poisson(lam, torch.tensor([3]), 0).view(20000, 6).numpy()
    ref = np.random.default_rng(0).poisson([0.3, 4.0, 9.99, 10.0, 37.5, 500.0], size=(20000, 6))
    assert np.allclose(k.mean(0), ref.mean(0), rtol=0.03, atol=0.01)
    assert np.allclose(k.var(0), ref.var(0), rtol=0.06, atol=0.01)
    for j, l in enumerate([0.3, 4.0, 9.99]):  # the probability mass at the mode
        mode = int(np.floor(l))
        assert (k[:, j] == mode).mean() == pytest.approx((ref[:, j] == mode).mean(), abs=0.015)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_impulse_noise_fractions(table):
    x = torch.full((1, 3, 192, 192), 0.5)
    for s in SEVERITIES:
        c = TABLES[table]["impulse_noise"][s - 1]
        y = corrupt(x, "impulse_noise", s, generator=torch.Generator().manual_seed(s), table=table)
        tolerance = 5 * np.sqrt(c / 2 * (1 - c / 2) / y.numel())  # 5 binomial standard deviations
        assert float((y == 1).float().mean()) == pytest.approx(c / 2, abs=tolerance)
        assert float((y == 0).float().mean()) == pytest.approx(c / 2, abs=tolerance)
        assert float(((y != 0) & (y != 1) & (y != 0.5)).float().sum()) == 0


# ----------------------------------------------------------------------------- deterministic steps


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_gaussian_blur_is_skimage_gaussian(table):
    x = _image()
    for s in SEVERITIES:
        sigma = TABLES[table]["gaussian_blur"][s - 1]
        y, _ = _run(x, "gaussian_blur", s, table)
        ref = np.clip(ndimage.gaussian_filter(_hwc(x), sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0), 0, 1)
        np.testing.assert_allclose(_hwc(y), ref, atol=1e-9)


def _glass_reference(x, seeds, sigma, d, iterations):
    """The script's glass_blur on one image, with genaug's draws for (dx, dy)."""
    h, w = x.shape[:2]
    img = np.uint8(ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest") * 255)
    for i in range(iterations):
        delta = _random.integers(seeds, 1 + i, ((h - 2 * d) * (w - 2 * d), 2), -d, d)[0].numpy()
        k = 0
        for hh in range(h - d, d, -1):
            for ww in range(w - d, d, -1):
                dx, dy = delta[k]
                k += 1
                h_prime, w_prime = hh + dy, ww + dx
                img[hh, ww], img[h_prime, w_prime] = img[h_prime, w_prime], img[hh, ww]  # as published
    return np.clip(ndimage.gaussian_filter(img / 255.0, sigma=(sigma, sigma, 0), mode="nearest"), 0, 1)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_glass_blur_is_the_published_loop(table):
    x = _image(34, 31)
    for s in SEVERITIES:
        sigma, d, iterations = TABLES[table]["glass_blur"][s - 1]
        y, seeds = _run(x, "glass_blur", s, table)
        np.testing.assert_allclose(_hwc(y), _glass_reference(_hwc(x), seeds, sigma, d, iterations), atol=1e-9)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_defocus_blur_is_cv2_filter2d_with_the_disk(table):
    cv2 = pytest.importorskip("cv2")
    x = _image(48, 45)
    for s in SEVERITIES:
        radius, alias_blur = TABLES[table]["defocus_blur"][s - 1]
        grid = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
        xx, yy = np.meshgrid(grid, grid)
        disk = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
        disk /= disk.sum()
        kernel = cv2.GaussianBlur(disk, ksize=(3, 3) if radius <= 8 else (5, 5), sigmaX=alias_blur)
        xs = _hwc(x)
        ref = np.clip(np.stack([cv2.filter2D(xs[:, :, k], -1, kernel) for k in range(3)], 2), 0, 1)
        y, _ = _run(x, "defocus_blur", s, table)
        np.testing.assert_allclose(_hwc(y), ref, atol=1e-6)


def _motion_reference(img, radius, sigma, angle):
    """ImageMagick's MotionBlurImage on an (H, W, C) float image: one-sided Gaussian taps along angle, edge pixels."""
    width = int(2 * np.ceil(radius) + 1)
    i = np.arange(width)
    kernel = np.exp(-(i * i) / (2.0 * sigma * sigma))
    kernel /= kernel.sum()
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    for t in range(width):
        ox = int(np.ceil(t * np.cos(np.deg2rad(angle)) - 0.5))
        oy = int(np.ceil(t * np.sin(np.deg2rad(angle)) - 0.5))
        rows = np.clip(np.arange(h) + oy, 0, h - 1)
        cols = np.clip(np.arange(w) + ox, 0, w - 1)
        out += kernel[t] * img[rows][:, cols]
    return out


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_motion_blur_is_imagemagick_motion_blur(table):
    x = _image(36, 40)
    for s in SEVERITIES:
        radius, sigma = TABLES[table]["motion_blur"][s - 1]
        y, seeds = _run(x, "motion_blur", s, table)
        angle = float(-45 + 90 * _random.uniform(seeds, 0, (1,), "cpu", torch.float64)[0, 0])
        assert -45 <= angle <= 45
        np.testing.assert_allclose(_hwc(y), np.clip(_motion_reference(_hwc(x), radius, sigma, angle), 0, 1), atol=1e-9)


def _clipped_zoom(img, z):
    """The scripts' clipped_zoom (square crop/trim per axis, scipy.ndimage.zoom order 1)."""
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / z)), int(np.ceil(w / z))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = ndimage.zoom(img[top:top + ch, left:left + cw], (z, z, 1), order=1)
    t, l_ = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[t:t + h, l_:l_ + w]


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_zoom_blur_is_the_scripts_average_of_zooms(table):
    x = _image(32, 32)
    xs = _hwc(x)
    for s in SEVERITIES:
        factors = TABLES[table]["zoom_blur"][s - 1]
        ref = (xs + sum(_clipped_zoom(xs, z) for z in factors)) / (len(factors) + 1)
        y, _ = _run(x, "zoom_blur", s, table)
        np.testing.assert_allclose(_hwc(y), np.clip(ref, 0, 1), atol=1e-6)


def test_zoom_blur_factor_lists_are_the_published_aranges():
    assert TABLES["cifar"]["zoom_blur"][0] == tuple(float(v) for v in np.arange(1, 1.06, 0.01))
    assert len(TABLES["cifar"]["zoom_blur"][0]) == 7  # np.arange's float rounding includes 1.06
    assert TABLES["imagenet"]["zoom_blur"][4] == tuple(float(v) for v in np.arange(1, 1.31, 0.03))


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_snow_is_the_published_composite(table):
    x = _image(32, 32)
    xs = _hwc(x)
    for s in SEVERITIES:
        loc, scale, zoom, threshold, radius, sigma, weight = TABLES[table]["snow"][s - 1]
        y, seeds = _run(x, "snow", s, table)
        layer = _random.normal(seeds, 0, (1, 32, 32), "cpu", torch.float32)[0, 0].double().numpy() * scale + loc
        layer = _clipped_zoom(layer[..., None], zoom)
        layer[layer < threshold] = 0
        layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8) / 255.0
        angle = float(-135 + 90 * _random.uniform(seeds, 1, (1,), "cpu", torch.float64)[0, 0])
        layer = np.round(_motion_reference(layer, radius, sigma, angle) * 255) / 255  # ImageMagick's 8-bit PNG
        gray = (0.299 * xs[..., 0] + 0.587 * xs[..., 1] + 0.114 * xs[..., 2])[..., None]
        ref = weight * xs + (1 - weight) * np.maximum(xs, gray * 1.5 + 0.5)
        ref = np.clip(ref + layer + np.rot90(layer, k=2), 0, 1)
        np.testing.assert_allclose(_hwc(y), ref, atol=1e-5)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_frost_blend_weights(table):
    # constant textures of the published sizes: the blend is c0 * x + c1 * 128 / 255 everywhere
    frost_module.set_frost_textures([np.full((h, w, 3), 128, np.uint8) for h, w in frost_module.SHAPES])
    try:
        x = _image(30, 32)
        for s in SEVERITIES:
            c0, c1 = TABLES[table]["frost"][s - 1]
            y, _ = _run(x, "frost", s, table)
            np.testing.assert_allclose(_hwc(y), np.clip(c0 * _hwc(x) + c1 * 128 / 255, 0, 1), atol=1e-6)
    finally:
        frost_module.set_frost_textures(None)
    assert FROST_RESIZE == {"cifar": 0.2, "tiny-imagenet": 0.3, "imagenet": 1.0}


def test_procedural_frost_textures_have_the_published_statistics():
    for k, (mean, std) in enumerate(frost_module.STATS):
        tex = frost_module.procedural_texture(k).astype(np.float64)
        assert tex.shape[:2] == frost_module.SHAPES[k]
        np.testing.assert_allclose(tex.mean((0, 1)), mean, atol=4.0)
        np.testing.assert_allclose(tex.std((0, 1)), std, rtol=0.2)


def _plasma_reference(uniforms, mapsize, wibbledecay):
    """The scripts' plasma_fractal, its np.random.uniform(-wibble, wibble) replaced by the given draws."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize, wibble, k = mapsize, 100.0, 0
    while stepsize >= 2:
        u = [t.numpy() for t in uniforms[k]]

        def wibbledmean(array, j):
            return array / 4 + wibble * (u[j] * 2 * wibble - wibble)

        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(squareaccum, 0)
        drgrid = maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = drgrid + np.roll(drgrid, 1, axis=0) + ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[0:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(ltsum, 1)
        ttsum = drgrid + np.roll(drgrid, 1, axis=1) + ulgrid + np.roll(ulgrid, -1, axis=0)
        maparray[stepsize // 2:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum, 2)
        stepsize //= 2
        wibble /= wibbledecay
        k += 1
    maparray -= maparray.min()
    return maparray / maparray.max()


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_fog_is_the_published_plasma_fog(table):
    from genaug.robustness._ops import plasma_steps

    x = _image(28, 30)
    xs = _hwc(x)
    size = FOG_MAP_SIZE[table]
    for s in SEVERITIES:
        strength, decay = TABLES[table]["fog"][s - 1]
        y, seeds = _run(x, "fog", s, table)
        uniforms = [[_random.uniform(seeds, 3 * k + j, (n, n), "cpu", torch.float64)[0] for j in range(3)]
                    for k, n in enumerate(plasma_steps(size))]
        plasma = _plasma_reference(uniforms, size, decay)[:28, :30, None]
        max_val = xs.max()
        ref = np.clip((xs + strength * plasma) * max_val / (max_val + strength), 0, 1)
        np.testing.assert_allclose(_hwc(y), ref, atol=1e-9)


# ----------------------------------------------------------------------------- colour


def _rgb2hsv(rgb):
    """scikit-image's rgb2hsv."""
    v = rgb.max(-1)
    delta = rgb.max(-1) - rgb.min(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(delta == 0, 0, delta / np.where(v == 0, 1, v))
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        dd = np.where(delta == 0, 1, delta)
        h = np.where(rgb[..., 0] == v, (g - b) / dd, np.where(g == v, 2.0 + (b - r) / dd, 4.0 + (r - g) / dd))
    h = (h / 6.0) % 1.0
    h = np.where(delta == 0, 0.0, h)
    return np.stack([h, s, v], -1)


def _hsv2rgb(hsv):
    """scikit-image's hsv2rgb."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    hi = np.stack([hi, hi, hi], -1).astype(np.uint8) % 6
    options = [np.stack(o, -1) for o in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    out = np.zeros_like(hsv)
    for k, o in enumerate(options):
        out = np.where(hi == k, o, out)
    return out


def _colour_image():
    x = _image(24, 26)
    x[0, :, :3, :3] = 0.0  # black pixels (V = 0)
    x[0, :, 5:8, 5:8] = 0.4  # gray pixels (S = 0)
    return x


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_brightness_and_saturate_are_hsv_edits(table):
    x = _colour_image()
    xs = _hwc(x)
    for s in SEVERITIES:
        c = TABLES[table]["brightness"][s - 1]
        hsv = _rgb2hsv(xs)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        y, _ = _run(x, "brightness", s, table)
        np.testing.assert_allclose(_hwc(y), np.clip(_hsv2rgb(hsv), 0, 1), atol=1e-9)
        a, b = TABLES[table]["saturate"][s - 1]
        hsv = _rgb2hsv(xs)
        hsv[..., 1] = np.clip(hsv[..., 1] * a + b, 0, 1)
        y, _ = _run(x, "saturate", s, table)
        np.testing.assert_allclose(_hwc(y), np.clip(_hsv2rgb(hsv), 0, 1), atol=1e-9)


def test_the_hsv_reference_is_scikit_image():
    color = pytest.importorskip("skimage.color")
    xs = _hwc(_colour_image())
    np.testing.assert_allclose(_rgb2hsv(xs), color.rgb2hsv(xs), atol=1e-12)
    np.testing.assert_allclose(_hsv2rgb(_rgb2hsv(xs)), color.hsv2rgb(color.rgb2hsv(xs)), atol=1e-12)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_contrast_factor(table):
    x = _image()
    xs = _hwc(x)
    for s in SEVERITIES:
        c = TABLES[table]["contrast"][s - 1]
        means = xs.mean(axis=(0, 1), keepdims=True)
        y, _ = _run(x, "contrast", s, table)
        np.testing.assert_allclose(_hwc(y), np.clip((xs - means) * c + means, 0, 1), atol=1e-12)


# ----------------------------------------------------------------------------- digital


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_elastic_transform_is_the_published_warp(table):
    x = _image(32, 32)
    xs = _hwc(x).astype(np.float32)
    h, w = 32, 32
    native = {"cifar": 32, "tiny-imagenet": 64, "imagenet": 224}[table]
    for s in SEVERITIES:
        alpha, sigma, affine = (v * h / native for v in TABLES[table]["elastic_transform"][s - 1])
        y, seeds = _run(x, "elastic_transform", s, table)
        center, square = np.float64([w // 2, h // 2]), min(h, w) // 3
        pts1 = np.float64([center + square, [center[0] + square, center[1] - square], center - square])
        pts2 = pts1 + (_random.uniform(seeds, 0, (3, 2), "cpu", torch.float64)[0].numpy() * 2 - 1) * affine
        m = np.linalg.solve(np.c_[pts1, np.ones(3)], pts2).T  # cv2.getAffineTransform(pts1, pts2)
        inv = np.linalg.inv(np.r_[m, [[0, 0, 1]]])
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
        sx, sy = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2], inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
        warped = np.stack([ndimage.map_coordinates(xs[..., k].astype(np.float64), [sy, sx], order=1, mode="mirror")
                           for k in range(3)], -1)  # warpAffine, bilinear, BORDER_REFLECT_101
        fields = _random.uniform(seeds, 1, (2, h, w), "cpu", torch.float64)[0].numpy() * 2 - 1
        dx, dy = ((ndimage.gaussian_filter(f, sigma, mode="reflect", truncate=3) if sigma > 0 else f) * alpha
                  for f in fields)
        dx, dy = dx.astype(np.float32), dy.astype(np.float32)
        ref = np.stack([ndimage.map_coordinates(warped[..., k], [gy + dy, gx + dx], order=1, mode="reflect")
                        for k in range(3)], -1)
        np.testing.assert_allclose(_hwc(y), np.clip(ref, 0, 1), atol=1e-5)


def test_elastic_affine_matches_cv2():
    cv2 = pytest.importorskip("cv2")
    pts1 = np.float32([[21, 21], [21, 11], [11, 11]])
    pts2 = pts1 + np.float32([[1.5, -2], [0.25, 1], [-1, 0.5]])
    m = np.linalg.solve(np.c_[pts1.astype(np.float64), np.ones(3)], pts2.astype(np.float64)).T
    np.testing.assert_allclose(m, cv2.getAffineTransform(pts1, pts2), atol=1e-5)


@pytest.mark.parametrize("table", TABLE_NAMES)
@pytest.mark.parametrize("size", [(32, 32), (37, 29)])
def test_pixelate_is_pil_box_resize_down_and_up(table, size):
    h, w = size
    x = (_image(h, w, seed=3) * 255).round().to(torch.uint8)
    arr = x[0].permute(1, 2, 0).numpy()
    for s in SEVERITIES:
        c = TABLES[table]["pixelate"][s - 1]
        img = Image.fromarray(arr).resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX)
        ref = np.asarray(img).astype(int)
        y = corrupt(x, "pixelate", s, table=table)[0].permute(1, 2, 0).numpy().astype(int)
        np.testing.assert_array_equal(y, ref)  # Pillow's fixed point, pass order and rounding


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_jpeg_is_pil_at_the_published_quality(table):
    x = (_image(40, 44, seed=5) * 255).round().to(torch.uint8)
    arr = x[0].permute(1, 2, 0).numpy()
    for s in SEVERITIES:
        q = TABLES[table]["jpeg_compression"][s - 1]
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=q)
        ref = np.asarray(Image.open(buf))
        y = corrupt(x, "jpeg_compression", s, table=table)[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(y, ref)


# ----------------------------------------------------------------------------- spatter


def _liquid(seeds, h, w, loc, scale, sigma, threshold):
    layer = _random.normal(seeds, 0, (h, w), "cpu", torch.float32)[0].double().numpy() * scale + loc
    layer = ndimage.gaussian_filter(layer, sigma, mode="nearest", truncate=4.0)  # skimage gaussian
    layer[layer < threshold] = 0
    return layer


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_spatter_mud_is_published(table):
    x = _image(32, 34)
    xs = _hwc(x)
    for s in (4, 5):
        loc, scale, sigma, threshold, intensity, mud = TABLES[table]["spatter"][s - 1]
        assert mud == 1
        y, seeds = _run(x, "spatter", s, table)
        layer = _liquid(seeds, 32, 34, loc, scale, sigma, threshold)
        m = ndimage.gaussian_filter(np.where(layer > threshold, 1, 0).astype(np.float64), intensity, mode="nearest")
        m[m < 0.8] = 0
        colour = np.array([63, 42, 20]) / 255.0 * m[..., None]
        np.testing.assert_allclose(_hwc(y), np.clip(xs * (1 - m[..., None]) + colour, 0, 1), atol=1e-6)


@pytest.mark.parametrize("table", TABLE_NAMES)
def test_spatter_water_is_the_published_opencv_pipeline(table):
    cv2 = pytest.importorskip("cv2")
    h, w = 40, 40
    x = _image(h, w)
    xs = _hwc(x)
    for s in (1, 2, 3):
        loc, scale, sigma, threshold, intensity, mud = TABLES[table]["spatter"][s - 1]
        assert mud == 0
        y, seeds = _run(x, "spatter", s, table)
        liquid = (np.clip(_liquid(seeds, h, w, loc, scale, sigma, threshold), 0, 255 / 255) * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = liquid * dist
        m = m / m.max() * intensity if m.max() > 0 else m
        ref = np.clip(xs + m[..., None] * (np.array([175, 238, 238]) / 255.0), 0, 1)
        np.testing.assert_allclose(_hwc(y), ref, atol=1e-5)
