"""DeepLab-LargeFOV on a width-scaled VGG-16 (and AlexNet): PFN's category-level network.

Liang et al. (PFN) §3.1: "The proposed PFN is fine-tuned based on the publicly available
pre-trained VGG 16-layer classification network [...] We utilize the 'DeepLab-CRF-LargeFOV'
network structure [Chen et al., DeepLab] as the basic [network]". DeepLab-LargeFOV turns
VGG-16 into a stride-8 fully convolutional net:

- conv1..conv3 blocks as in VGG-16, each followed by a 3x3 max pool with stride 2, pad 1
  (DeepLab's prototxt; torchvision's VGG pools 2x2 -- pools have no parameters, so
  ImageNet weights map either way);
- pool4 and pool5 at stride 1 (3x3, stride 1, pad 1), and conv5 with dilation 2 (the
  "hole algorithm") so that output stride stays 8;
- fc6 as a 3x3 convolution with dilation 12 and 1024 channels (LargeFOV), fc7 a 1x1
  convolution with 1024 channels, both with ReLU and dropout 0.5, then the classifier
  (fc8, ``C + 1`` maps, §3.1: "the 1000-way ImageNet classifier in the last layer of
  VGG-16 is replaced with C + 1 confidence maps").

:class:`VGGTrunk` is that trunk without the classifier, width-scaled like
:class:`~instseg_lib.models.backbones.ScaledResNet`: ``width`` 64 is the standard network
(conv channels 64-128-256-512-512, fc 1024; parameter names are torchvision's ``features.N``
so ImageNet weights load, see :func:`load_vgg_imagenet_weights`), 16 a quarter. It exposes
the intermediate maps PFN's five multi-scale streams read (§3.2: "attached to the input
image, the output of each of the first three max pooling layers and the last convolutional
layer (fc7)") through :meth:`VGGTrunk.forward_features`.

``arch="alexnet"`` gives the "PFN Alexnet" trunk (§4.2: "we convert the fully connected
layers in Alexnet to fully convolutional layers, and all other settings are the same"):
torchvision's AlexNet convolutions (64-192-384-256-256 at width 64), made stride 8 the
DeepLab way (pool2 and pool5 at stride 1, conv3..5 dilated 2), then the same fc6/fc7.
AlexNet has three max pools, so its five streams are input, pool1, pool2, pool5 and fc7.

``output_stride`` 32 (or 16) keeps the pools at stride 2 instead (no dilation): that is the
classification form used by the stand-in pretraining (:mod:`instseg_lib.pretrain`), with the
same parameters, as ImageNet VGG-16 is the same net before DeepLab's conversion.

Field of view. fc6's taps span ``((3 - 1) * 12 + 1) * 8 = 200`` px of input (DeepLab quotes
224, the span of VGG's 7x7 fc6 at stride 32 that LargeFOV emulates; PFN §3.1 repeats "224 x
224"); the full theoretical receptive field of fc7 is larger (419 px at dilation 12, see
:func:`receptive_field`). On the twin's small crops the dilation is scaled with the crop
(:func:`largefov_dilation`), as :func:`instseg_lib.recipes.wu2016.twin_dilation` does for Wu's
classifier.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import AlexNet_Weights
from torchvision.models import vgg as tv_vgg

from . import weights

#: Trunk architectures and their layer lists: ``int`` a 3x3 conv with that many channels at
#: width 64, ``(channels, kernel, stride)`` a conv, ``"M"`` a max pool (torchvision's order).
ARCH_LAYERS: dict[str, list[Any]] = {
    "vgg16": list(tv_vgg.cfgs["D"]),
    "alexnet": [(64, 11, 4), "M", (192, 5, 1), "M", (384, 3, 1), (256, 3, 1), (256, 3, 1), "M"],
}
#: The maps PFN's five streams read (§3.2), per architecture.
STREAM_TAPS: dict[str, tuple[str, ...]] = {
    "vgg16": ("input", "pool1", "pool2", "pool3", "fc7"),
    "alexnet": ("input", "pool1", "pool2", "pool5", "fc7"),
}
#: Names of the max pools in order (AlexNet's third pool follows conv5: "pool5").
POOL_NAMES: dict[str, tuple[str, ...]] = {
    "vgg16": ("pool1", "pool2", "pool3", "pool4", "pool5"),
    "alexnet": ("pool1", "pool2", "pool5"),
}
#: DeepLab-LargeFOV's fc6 dilation and the crop it was trained on (DeepLab: 321 x 321).
LARGEFOV_DILATION = 12
LARGEFOV_CROP = 321

_WEIGHTS = {
    ("vgg16", False): tv_vgg.VGG16_Weights.IMAGENET1K_V1,
    ("vgg16", True): tv_vgg.VGG16_BN_Weights.IMAGENET1K_V1,
    ("alexnet", False): AlexNet_Weights.IMAGENET1K_V1,
}
#: torchvision's fc6 / fc7 keys (the linear layers DeepLab converts to convolutions).
_TV_FC = {"vgg16": ("classifier.0", "classifier.3"), "alexnet": ("classifier.1", "classifier.4")}
#: Spatial size of torchvision's fc6 input (VGG 7x7 after pool5, AlexNet 6x6 after avgpool).
_TV_FC6_SIZE = {"vgg16": 7, "alexnet": 6}

#: Their names in the registry of :mod:`.weights`.
_REGISTRY_ARCH = {("vgg16", False): "vgg16", ("vgg16", True): "vgg16_bn", ("alexnet", False): "alexnet"}

# Reasons already warned about (as in backbones.py).
_WARNED: set[str] = set()


def largefov_dilation(crop_size: int, paper_dilation: int = LARGEFOV_DILATION,
                      paper_crop: int = LARGEFOV_CROP) -> int:
    """fc6's dilation scaled to a ``crop_size`` crop, so fc6 spans the same fraction of it
    as LargeFOV's dilation 12 does of DeepLab's 321 px crops (at least 1)."""
    return max(1, int(round(paper_dilation * crop_size / paper_crop)))


def _scaled(channels: int, width: int) -> int:
    return max(1, channels * width // 64)


class VGGTrunk(nn.Module):
    """DeepLab-LargeFOV trunk (VGG-16 or AlexNet) up to fc7, width-scaled.

    ``forward`` returns fc7 (``out_channels = 16 * width``, 1024 at width 64) at stride
    ``output_stride`` (8: DeepLab; 16 or 32: pools at stride 2, the classification form).
    ``fc6_dilation`` is fc6's dilation at stride 8 (LargeFOV: 12); at stride 16/32 it is
    divided by 2/4 (at least 1) so that fc6 spans about the same input pixels.
    ``batch_norm`` inserts BatchNorm after each conv (torchvision's ``vgg16_bn`` layout and
    weights; not DeepLab's net, an option for from-scratch training).
    """

    def __init__(
        self,
        arch: Literal["vgg16", "alexnet"] = "vgg16",
        width: int = 64,
        output_stride: int = 8,
        fc6_dilation: int = LARGEFOV_DILATION,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if arch not in ARCH_LAYERS:
            raise ValueError(f"arch must be one of {', '.join(ARCH_LAYERS)}; got {arch!r}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32; got {output_stride}")
        if width < 1:
            raise ValueError(f"width must be positive; got {width}")
        if fc6_dilation < 1:
            raise ValueError(f"fc6_dilation must be >= 1; got {fc6_dilation}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        if batch_norm and arch != "vgg16":
            raise ValueError("batch_norm exists for vgg16 only (torchvision's vgg16_bn)")
        self.arch, self.width, self.output_stride = arch, width, output_stride
        self.batch_norm = batch_norm
        layers: list[nn.Module] = []
        # Names of the pool outputs by their index in ``features`` (pool1, pool2, ...).
        self._taps: dict[int, str] = {}
        self.stream_strides: dict[str, int] = {"input": 1}
        self.stream_channels: dict[str, int] = {"input": 3}
        cin, stride, dilation, n_pool = 3, 1, 1, 0
        for spec in ARCH_LAYERS[arch]:
            if spec == "M":
                n_pool += 1
                if stride < output_stride:
                    pool = nn.MaxPool2d(3, stride=2, padding=1)
                    stride *= 2
                else:
                    # DeepLab: a stride-1 pool, and the layers after it dilated to keep the
                    # sampling rate of the ImageNet net (the hole algorithm).
                    pool = nn.MaxPool2d(3, stride=1, padding=1)
                    dilation *= 2
                layers.append(pool)
                name = POOL_NAMES[arch][n_pool - 1]
                self._taps[len(layers) - 1] = name
                self.stream_strides[name], self.stream_channels[name] = stride, cin
                continue
            out, k, s = (spec, 3, 1) if isinstance(spec, int) else spec
            out = _scaled(out, width)
            d = dilation if s == 1 else 1
            layers.append(nn.Conv2d(cin, out, k, stride=s, padding=d * (k - 1) // 2, dilation=d))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            cin, stride = out, stride * s
        self.features = nn.Sequential(*layers)
        fc = 16 * width  # LargeFOV's 1024 channels at width 64
        self.fc6_dilation = max(1, int(round(fc6_dilation * 8 / output_stride)))
        self.fc6 = nn.Conv2d(cin, fc, 3, padding=self.fc6_dilation, dilation=self.fc6_dilation)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.drop6 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.drop7 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_channels = fc
        self.stream_strides["fc7"], self.stream_channels["fc7"] = stride, fc
        self.stream_strides["fc6"], self.stream_channels["fc6"] = stride, fc
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # torchvision's VGG initialisation
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def streams(self) -> tuple[str, ...]:
        """The five maps PFN's multi-scale streams read (§3.2)."""
        return STREAM_TAPS[self.arch]

    def forward_features(self, x: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """The named intermediate maps: ``input``, ``pool1``..., ``fc6``, ``fc7``.

        ``names`` selects which to return (default: :attr:`streams`). fc6/fc7 are taken
        after ReLU and dropout, as Caffe's in-place ``relu7``/``drop7`` leave the ``fc7``
        blob that PFN's layers read.
        """
        want = set(self.streams if names is None else names)
        out: dict[str, torch.Tensor] = {}
        if "input" in want:
            out["input"] = x
        for i, layer in enumerate(self.features):
            x = layer(x)
            name = self._taps.get(i)
            if name in want:
                out[name] = x
        x = self.drop6(F.relu(self.fc6(x)))
        if "fc6" in want:
            out["fc6"] = x
        x = self.drop7(F.relu(self.fc7(x)))
        if "fc7" in want:
            out["fc7"] = x
        unknown = want - set(out)
        if unknown:
            raise KeyError(f"no feature map named {sorted(unknown)} in {self.arch}; have {sorted(self.stream_strides)}")
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.forward_features(x, ("fc7",))["fc7"]


def receptive_field(trunk: VGGTrunk, upto: str = "fc7") -> int:
    """Theoretical receptive field (input px) of one unit of map ``upto`` (``pool<k>``,
    ``fc6`` or ``fc7``): ``r += (d (k - 1)) * jump`` over the layers, ``jump *= stride``."""
    r, jump = 1, 1

    def step(k: int, s: int, d: int) -> None:
        nonlocal r, jump
        r += d * (k - 1) * jump
        jump *= s

    for i, m in enumerate(trunk.features):
        if isinstance(m, nn.Conv2d):
            step(m.kernel_size[0], m.stride[0], m.dilation[0])
        elif isinstance(m, nn.MaxPool2d):
            step(int(m.kernel_size), int(m.stride), 1)
            if trunk._taps.get(i) == upto:
                return r
    step(3, 1, trunk.fc6_dilation)
    if upto == "fc6":
        return r
    if upto != "fc7":
        raise KeyError(f"no map named {upto!r} in {trunk.arch}")
    return r  # fc7 is 1x1


class DeepLabLargeFOV(nn.Module):
    """PFN's category-level network (§3.1): :class:`VGGTrunk` + a 1x1 classifier (fc8).

    ``(B, 3, H, W)`` -> ``(B, num_classes, H, W)`` logits (bilinearly upsampled from
    stride 8; :meth:`forward_features` gives the stride-8 maps the loss of §3.1 is computed
    on: "confidence maps (down-sampled by 8 compared to the original image)").
    ``num_classes`` counts background (C + 1). ``init_info`` records ImageNet loading.
    """

    def __init__(self, num_classes: int, arch: Literal["vgg16", "alexnet"] = "vgg16", width: int = 64,
                 fc6_dilation: int = LARGEFOV_DILATION, dropout: float = 0.5, batch_norm: bool = False,
                 pretrained: bool = False) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes counts background and must be >= 2; got {num_classes}")
        self.backbone = VGGTrunk(arch, width, 8, fc6_dilation, dropout, batch_norm)
        self.classifier = nn.Conv2d(self.backbone.out_channels, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)  # §4.1: new layers ~ N(0, 0.01)
        nn.init.zeros_(self.classifier.bias)
        self.init_info: dict[str, Any] = load_vgg_imagenet_weights(self.backbone, pretrained)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at stride 8."""
        return self.classifier(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.forward_features(x)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- ImageNet weights
def _decimate_taps(size: int) -> torch.Tensor:
    """Three of ``size`` kernel taps, evenly spread (round half up): 7 -> 0, 3, 6; 6 -> 0, 3, 5."""
    return torch.floor(torch.linspace(0, size - 1, 3) + 0.5).long()


def imagenet_to_trunk(state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """Map a torchvision ``vgg16``/``vgg16_bn``/``alexnet`` state dict onto :class:`VGGTrunk`
    at width 64, as DeepLab converts VGG-16 (DeepLab §4.1, "decimation"):

    - ``features.N`` are the same tensors (same indices);
    - fc6 (4096 x 512*7*7) keeps every 4th output unit and the taps 0, 3, 6 of its 7x7
      kernel -> a 1024 x 512 x 3 x 3 convolution (AlexNet: 6x6 taps 0, 3, 5);
    - fc7 (4096 x 4096) keeps every 4th output and input unit -> 1024 x 1024 x 1 x 1;
    - the 1000-way classifier is dropped (PFN §3.1).
    """
    out = {k: v for k, v in state.items() if k.startswith("features.")}
    k6, k7 = _TV_FC[arch]
    s = _TV_FC6_SIZE[arch]
    w6 = state[f"{k6}.weight"]
    w6 = w6.reshape(w6.shape[0], -1, s, s)[::4]
    taps = _decimate_taps(s)
    out["fc6.weight"] = w6[:, :, taps][:, :, :, taps].contiguous()
    out["fc6.bias"] = state[f"{k6}.bias"][::4].clone()
    out["fc7.weight"] = state[f"{k7}.weight"][::4, ::4, None, None].contiguous()
    out["fc7.bias"] = state[f"{k7}.bias"][::4].clone()
    return out


def _load_imagenet_state(key: tuple[str, bool], timeout_s: float) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torchvision's ImageNet state dict and its ``{"url", "sha256"}`` from the verified cache
    (:func:`instseg_lib.models.weights.load_imagenet_state`; downloaded first if need be)."""
    return weights.load_imagenet_state(_REGISTRY_ARCH[key], timeout_s)


def load_vgg_imagenet_weights(trunk: VGGTrunk, pretrained: bool, timeout_s: float = 10.0, *,
                              fallback: bool | None = None) -> dict[str, Any]:
    """Initialise ``trunk`` from torchvision's ImageNet VGG-16 / AlexNet (PFN §3.1: "fine-tuned
    based on the publicly available pre-trained VGG 16-layer classification network").

    Mirrors :func:`instseg_lib.models.backbones.load_imagenet_weights`: returns
    ``{"pretrained": bool, "weights": str | None, "reason": str}`` (plus the file's ``url`` and
    ``sha256`` when loaded); needs ``width == 64`` (other widths keep their random
    initialisation, one warning); at width 64 weights that cannot be had raise
    :class:`~instseg_lib.models.weights.WeightsUnavailableError` unless ``fallback`` (default
    ``$INSTSEG_INIT_FALLBACK=standin``) asks to go on with the random initialisation.
    """
    if not pretrained:
        return {"pretrained": False, "weights": None, "reason": "pretrained=False"}
    if trunk.width != 64:
        return _fallback(f"ImageNet weights exist for width 64 only (got width {trunk.width}); "
                         "random initialisation", key="width")
    key = (trunk.arch, trunk.batch_norm)
    name = f"{_WEIGHTS[key]}"
    try:
        state, source = _load_imagenet_state(key, timeout_s)
    except weights.WeightsUnavailableError as err:
        if not (weights.fallback_requested() if fallback is None else fallback):
            raise
        return _fallback(f"{name} not loaded: {err.cause}; {weights.FALLBACK_ENV} asks to go on: random "
                         "initialisation instead of ImageNet pretraining", key=f"unavailable {name}")
    trunk.load_state_dict(imagenet_to_trunk(state, trunk.arch), strict=True)
    return {"pretrained": True, "weights": f"{name} (fc6/fc7 decimated as in DeepLab-LargeFOV)", "reason": "loaded",
            **source}


def _fallback(reason: str, key: str) -> dict[str, Any]:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(reason, RuntimeWarning, stacklevel=3)
    return {"pretrained": False, "weights": None, "reason": reason}
