"""One check of a user's device argument, shared by every entry point (DeviceLoader, training,
exports, generator evaluation): a misspelled or absent device fails at once, with one message that
names the argument, the value and the devices this machine has, instead of a traceback after work.
"""

from __future__ import annotations

from typing import Any

import torch

#: Device types that genaug runs on (``meta`` only where a caller allows it: shapes, no data).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def available_devices() -> list[str]:
    """The devices this machine has, e.g. ``['cpu', 'cuda:0']``.

    Example:
        >>> available_devices()[0]
        'cpu'
    """
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        out += [f"xpu:{i}" for i in range(xpu.device_count())]
    return out


def check_device(device: Any, argument: str = "device", *, auto: bool = True, meta: bool = False) -> torch.device:
    """``device`` as a :class:`torch.device` that this machine has; ``ValueError`` otherwise.

    Args:
        device: a ``torch.device`` or its name (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...).
        argument: how the caller's users spell the argument (``"device"``, ``"--device"``), for messages.
        auto: also accept ``"auto"``: CUDA when available, else the CPU.
        meta: also accept PyTorch's ``meta`` device (shapes only, no data).

    Example:
        >>> check_device("cpu")
        device(type='cpu')
        >>> check_device("nosuch", "--device")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: --device='nosuch' is not a device name torch knows; allowed: auto, cpu, cuda, cuda:N, mps, xpu ...
    """
    if isinstance(device, bool) or not isinstance(device, (str, torch.device)):
        raise TypeError(f"{argument} must be a device name such as 'cuda' or 'cpu', or a torch.device, got "
                        f"{device!r} ({type(device).__name__})")
    if auto and isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    allowed = ", ".join([*(["auto"] if auto else []), "cpu", "cuda", "cuda:N", "mps", "xpu", *(["meta"] if meta else [])])
    have = f"this machine has: {', '.join(available_devices())}"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{argument}={device!r} is not a device name torch knows; allowed: {allowed} ({have})") from None
    shown = f"{argument}={str(device)!r}"
    if dev.type == "cpu" or (meta and dev.type == "meta"):
        return dev
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"{shown}: device type {dev.type!r} is not supported; allowed: {allowed} ({have})")
    if dev.type == "cuda" and not torch.cuda.is_available():
        built = "built with CUDA " + torch.version.cuda if torch.version.cuda else "built without CUDA"
        raise ValueError(f"{shown}: CUDA is not available on this machine (torch.cuda.is_available() is False; "
                         f"PyTorch {torch.__version__} {built}); {have}")
    present = [d for d in available_devices() if d.split(":")[0] == dev.type]
    if not present:
        raise ValueError(f"{shown}: this machine has no {dev.type.upper()} device; {have}")
    if dev.index is not None and dev.type != "mps" and f"{dev.type}:{dev.index}" not in present:
        raise ValueError(f"{shown}: there is no such device, this machine has {len(present)} {dev.type.upper()} "
                         f"device(s) ({', '.join(present)}); {have}")
    return dev
