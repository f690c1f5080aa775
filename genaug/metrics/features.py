"""Feature extractors for the distribution metrics, and features extracted once for many metrics.

FID, KID, precision/recall and diversity compare images in the feature space of a network. The
numbers are only comparable between runs that used the **same extractor** (and the same number
of samples): an FID measured with the MNIST classifier's features has nothing to do with an FID
measured with Inception's. Every :class:`FeatureSet` records its extractor's name, and the metrics
refuse to compare two sets made by different extractors.

Extractors (the ``features=`` argument everywhere):

* ``None`` (default): for 1x28x28 images the shipped ``mnist-classifier``'s 128-d penultimate
  layer (:meth:`genaug.generative.Classifier.features`). No other image size has a default,
  because nothing is downloaded: pass one of the options below.
* a shipped classifier name or the path of a genaug classifier checkpoint (``.safetensors``).
* ``"inception:PATH"``: the standard FID Inception-v3 (2048-d pool features, via
  ``torch-fidelity``) with weights read from a local file you already have; see
  :class:`InceptionFeatures`.
* a genaug :class:`~genaug.generative.Classifier` (its ``features``), or any ``nn.Module`` /
  callable mapping float images in [0, 1] ``(B, C, H, W)`` to ``(B, D)``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import torch
from torch import nn

from .inputs import Images, first_shape, iter_batches, num_images

Extractor = Union[None, str, os.PathLike, nn.Module, Callable[[torch.Tensor], torch.Tensor]]
"""What ``features=`` accepts (see the module docstring)."""

DEFAULT_EXTRACTOR = "mnist-classifier"
PROGRESS_MIN_BATCHES = 8
"""With ``progress=None`` a bar is shown when there are at least this many batches."""


@dataclass
class FeatureSet:
    """Features of a set of images, extracted once and reused by every metric.

    Pass it wherever a metric takes images (``fid(real_fs, fake_fs)``) to skip re-extraction.

    Attributes:
        features: float64 CPU tensor ``(N, D)``.
        labels: int64 ``(N,)`` class ids, or ``None`` when the images had none.
        extractor: name of the extractor (metrics compare only sets with the same name).
        image_shape: ``(C, H, W)`` of the images.
    """

    features: torch.Tensor
    labels: torch.Tensor | None
    extractor: str
    image_shape: tuple[int, int, int]

    def __len__(self) -> int:
        return self.features.shape[0]

    def select(self, index: torch.Tensor) -> "FeatureSet":
        """The rows ``index`` (indices or a boolean mask) as a new FeatureSet."""
        labels = self.labels[index] if self.labels is not None else None
        return FeatureSet(self.features[index], labels, self.extractor, self.image_shape)


class InceptionFeatures(nn.Module):
    """The standard FID Inception-v3 (2048-d pool3 features) with weights from a local file.

    Uses ``torch-fidelity``'s TensorFlow-compatible network (the one behind the published FID
    numbers). genaug never downloads the weights: give the file you have, torch-fidelity's
    ``weights-inception-2015-12-05-6726825d.pth`` (or the same tensors saved as
    ``.safetensors``). The file is read with ``torch.load(weights_only=True)`` (or safetensors),
    never unpickled. Grey images are repeated to 3 channels; images are resized to 299x299.

    Args:
        weights_path: path of the weights file.

    Example:
        >>> InceptionFeatures("/nonexistent/inception.pth")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: features='inception:/nonexistent/inception.pth': no such file...
    """

    num_features = 2048

    def __init__(self, weights_path: str | os.PathLike) -> None:
        super().__init__()
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"features='inception:{path}': no such file. genaug never downloads weights; get the FID "
                "Inception weights file (torch-fidelity's weights-inception-2015-12-05-6726825d.pth) once, "
                "then pass features='inception:/path/to/it'. For 1x28x28 digits the default extractor "
                f"('{DEFAULT_EXTRACTOR}') needs no download.")
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as e:
            raise ImportError("features='inception:...' needs torch-fidelity: pip install 'genaug[metrics]' "
                              "(or pip install torch-fidelity)") from e
        state = _read_state_dict(path)
        # torch-fidelity reads weights with torch.load(weights_only=False); hand it only the plain
        # tensors read safely above, re-serialised in memory, never the user's file itself.
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=buf)
        except RuntimeError as e:
            raise ValueError(f"features='inception:{path}' is not the FID Inception-v3 weights file expected by "
                             f"torch-fidelity ({str(e).splitlines()[0]})") from e

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] ``(B, 1 or 3, H, W)`` -> features ``(B, 2048)``."""
        if images.shape[1] not in (1, 3):
            raise ValueError(f"Inception takes 1 or 3 channels; got {images.shape[1]}")
        x = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x.contiguous())[0]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a weights file, or one that would need unpickling code
        raise ValueError(f"features='inception:{path}': could not read it as a weights file with "
                         f"torch.load(weights_only=True) ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"features='inception:{path}' must hold a state dict (names -> tensors)")
    return state


def _model_device(module: Any) -> torch.device | None:
    if isinstance(module, nn.Module):
        for p in module.parameters():
            return p.device
        for b in module.buffers():
            return b.device
    return None


def resolve_extractor(features: Extractor, image_shape: tuple[int, ...],
                      device: torch.device | None = None) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """Turn ``features=`` into ``(callable, name)``; checks the default extractor fits the images.

    Args:
        features: see the module docstring.
        image_shape: ``(C, H, W)`` of the images to be featurised.
        device: where to put an extractor genaug loads (shipped or from a file); user modules stay put.

    Returns:
        A callable taking float images in [0, 1] and the extractor's name.

    Example:
        >>> fn, name = resolve_extractor(None, (1, 28, 28))
        >>> name
        'mnist-classifier'
    """
    from genaug.generative import Classifier, load_model

    image_shape = tuple(int(s) for s in image_shape)
    if features is None or (isinstance(features, str) and features == "default"):
        if image_shape != (1, 28, 28):
            raise ValueError(
                f"there is no default feature extractor for {image_shape[0]}x{image_shape[1]}x{image_shape[2]} images "
                f"(the default, '{DEFAULT_EXTRACTOR}', takes 1x28x28; nothing is downloaded). Pass features= a "
                "genaug classifier checkpoint trained on your data, 'inception:/path/to/weights.pth', or any "
                "nn.Module mapping (B, C, H, W) images in [0, 1] to (B, D) features")
        features = DEFAULT_EXTRACTOR
    if isinstance(features, str) and features.startswith("inception:"):
        net = InceptionFeatures(features.split(":", 1)[1])
        if device is not None:
            net = net.to(device)
        return _no_grad_eval(net), "inception-v3-compat/2048"
    if isinstance(features, (str, os.PathLike)):
        try:
            model = load_model(features, device=device or "cpu")
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f"features={str(features)!r}: {e}") from e
        if not isinstance(model, Classifier):
            raise ValueError(f"features={str(features)!r} is a {getattr(model, 'kind', type(model).__name__)} checkpoint;"
                             " a feature extractor must be a classifier (e.g. 'mnist-classifier')")
        _check_classifier_fits(model, image_shape, str(features))
        return _no_grad_eval(model, model.features), _checkpoint_name(features, model)
    if isinstance(features, Classifier):
        _check_classifier_fits(features, image_shape, "the classifier")
        return _no_grad_eval(features, features.features), f"classifier:{id(features):x}"
    if callable(features):
        return _no_grad_eval(features), f"custom:{type(features).__name__}"
    raise TypeError(f"features must be None, a classifier name or path, 'inception:PATH', or a callable; "
                    f"got {type(features).__name__}")


def _checkpoint_name(spec: str | os.PathLike, model: Any) -> str:
    """A shipped name as is; a file as ``name@sha256[:12]`` (the same weights get the same name)."""
    from genaug.generative import SHIPPED

    if isinstance(spec, str) and spec in SHIPPED:
        return spec
    sha = getattr(model, "checkpoint_metadata", {}).get("sha256", "")
    return f"{Path(spec).name}@{sha[:12]}"


def _check_classifier_fits(clf: Any, image_shape: tuple[int, ...], what: str) -> None:
    cfg = clf.config
    want = (cfg.channels, cfg.image_size, cfg.image_size)
    if tuple(image_shape) != want:
        raise ValueError(f"images are {image_shape[0]}x{image_shape[1]}x{image_shape[2]} but {what} takes "
                         f"{want[0]}x{want[1]}x{want[2]} (channels x height x width); pass a features= extractor "
                         "made for these images")


@contextmanager
def full_precision() -> Iterator[None]:
    """Turn TF32 off for CUDA convolutions and matrix products inside the block, then restore it.

    PyTorch lets cuDNN use TF32 (10-bit mantissa) for float32 convolutions on Ampere and newer
    GPUs; features then differ from the CPU's by ~1e-3, enough to move FID in its third digit.
    With TF32 off a GPU gives the CPU's features to float32 precision.
    """
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


def _no_grad_eval(module: Any, fn: Callable | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap an extractor: eval mode for the call, no autograd, no TF32, inputs moved to its device."""
    from genaug.generative.models.common import training_mode

    call = fn or module

    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        dev = _model_device(module)
        x = x.to(dev) if dev is not None else x
        with full_precision():
            if isinstance(module, nn.Module):
                with training_mode(module, False):
                    out = call(x)
            else:
                out = call(x)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the feature extractor returned {type(out).__name__}; it must return a (B, D) tensor")
        return out.reshape(out.shape[0], -1)

    return run


def extract_features(data: Images | FeatureSet, features: Extractor = None, *, batch_size: int = 256,
                     device: str | torch.device | None = None, progress: bool | None = None,
                     name: str = "images") -> FeatureSet:
    """Extract features of a set of images once, for any number of metrics.

    Args:
        data: tensor ``(N, C, H, W)`` (uint8 or float in [0, 1], any device), ``(images, labels)``
            or a Dataset; a :class:`FeatureSet` is returned unchanged.
        features: the extractor (module docstring); default: ``mnist-classifier`` for 1x28x28.
        batch_size: images per forward pass.
        device: where a loaded extractor runs (default: the images' device, else the CPU).
        progress: show a tqdm bar (``None``: only for >= 8 batches).
        name: the argument's name in error messages.

    Returns:
        :class:`FeatureSet` with float64 CPU features.

    Example:
        >>> import torch
        >>> fs = extract_features(torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
        >>> tuple(fs.features.shape), fs.extractor
        ((4, 128), 'mnist-classifier')
    """
    from tqdm.auto import tqdm

    if isinstance(data, FeatureSet):
        return data
    shape = first_shape(data, name)
    if device is None:
        images = data[0] if isinstance(data, (tuple, list)) else data
        device = images.device if isinstance(images, torch.Tensor) else None
    device = torch.device(device) if device is not None else None
    fn, ext_name = resolve_extractor(features, shape, device)
    n = num_images(data, name)
    n_batches = -(-n // batch_size)
    show = progress if progress is not None else n_batches >= PROGRESS_MIN_BATCHES
    feats, labels = [], []
    with tqdm(total=n, desc=f"features ({name})", unit="img", disable=not show, dynamic_ncols=True, leave=False) as bar:
        for x, y in iter_batches(data, batch_size, name):
            if tuple(x.shape[1:]) != shape:
                raise ValueError(f"{name}: images of different shapes {shape} and {tuple(x.shape[1:])}")
            feats.append(fn(x).detach().to("cpu", torch.float64))
            labels.append(y)
            bar.update(x.shape[0])
    out = torch.cat(feats)
    if not torch.isfinite(out).all():
        raise ValueError(f"the feature extractor {ext_name!r} returned NaN or inf for {name}")
    lab = torch.cat(labels) if labels and all(y is not None for y in labels) else None
    return FeatureSet(out, lab, ext_name, shape)  # type: ignore[arg-type]


def feature_pair(real: Images | FeatureSet, fake: Images | FeatureSet, features: Extractor = None, *,
                 batch_size: int = 256, device: str | torch.device | None = None,
                 progress: bool | None = None, min_samples: int = 2) -> tuple[FeatureSet, FeatureSet]:
    """Features of ``real`` and ``fake`` from one extractor, after checking that they are comparable.

    Errors (``ValueError``) name the argument: images of different channels or sizes, fewer
    than ``min_samples`` images, or two FeatureSets from different extractors.

    Returns:
        ``(real_features, fake_features)``.
    """
    shapes = {}
    for nm, d in (("real", real), ("fake", fake)):
        shapes[nm] = d.image_shape if isinstance(d, FeatureSet) else first_shape(d, nm)
        n = len(d) if isinstance(d, FeatureSet) else num_images(d, nm)
        if n < min_samples:
            raise ValueError(f"{nm} has {n} image(s); this metric needs at least {min_samples}")
    if tuple(shapes["real"]) != tuple(shapes["fake"]):
        r, f = shapes["real"], shapes["fake"]
        raise ValueError(f"real images are {r[0]}x{r[1]}x{r[2]} but fake images are {f[0]}x{f[1]}x{f[2]} "
                         "(channels x height x width); both sets must have the same channels and size")
    fr = extract_features(real, features, batch_size=batch_size, device=device, progress=progress, name="real")
    ff = extract_features(fake, features, batch_size=batch_size, device=device, progress=progress, name="fake")
    if fr.extractor != ff.extractor or fr.features.shape[1] != ff.features.shape[1]:
        raise ValueError(f"real features come from {fr.extractor!r} ({fr.features.shape[1]}-d) but fake features from "
                         f"{ff.extractor!r} ({ff.features.shape[1]}-d); metrics are comparable only with one extractor")
    return fr, ff
