"""Width-scaled, dilated ResNet-50/101/152 backbones (Wu et al. 2016, §2.3).

An FCRN starts from the ResNet of He et al. [6], drops the 7x7 pooling and the fc layer,
and trades the last down-samplings for dilation ("hole algorithm", DeepLab [2]) so the
feature map has stride 8 or 16 (Table 1 "Resolution" 1/8, 1/16).

:class:`ScaledResNet` reuses torchvision's ``Bottleneck`` and ``ResNet._make_layer`` but
makes the base width a parameter: width 64 is the standard network (parameter names and
shapes equal torchvision's ``resnet50/101/152`` state dict minus ``fc``, so ImageNet
weights load, see :func:`load_imagenet_weights` and :mod:`.weights`); width 16 is a
quarter-width network with the same depth structure, used by the ``cpu`` profile.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from . import weights

#: Blocks per stage for each depth (He et al. 2016, Table 1).
RESNET_LAYERS: dict[int, list[int]] = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}

#: Which stride-2 stages become dilated for each output stride (DeepLab's hole algorithm).
DILATION_FOR_STRIDE: dict[int, list[bool]] = {
    8: [False, True, True],
    16: [False, False, True],
    32: [False, False, False],
}

_WEIGHTS = {
    50: tv_resnet.ResNet50_Weights.IMAGENET1K_V1,
    101: tv_resnet.ResNet101_Weights.IMAGENET1K_V1,
    152: tv_resnet.ResNet152_Weights.IMAGENET1K_V1,
}

# Reasons already warned about, so an offline run warns once, not once per model (a failed
# download is not retried in the process either: instseg_lib.models.weights remembers it).
_WARNED: set[str] = set()


class ScaledResNet(tv_resnet.ResNet):
    """Torchvision's bottleneck ResNet with a free base ``width`` and no pooling/fc.

    ``forward`` returns the ``layer4`` feature map (``out_channels = 32 * width``
    channels, stride ``output_stride``). ``dropout`` > 0 applies dropout after each
    residual block of ``layer4`` (the paper's "dropout in some of the residual blocks",
    §1); dropout has no parameters, so state-dict names stay torchvision's.
    """

    def __init__(
        self,
        depth: int = 50,
        width: int = 64,
        output_stride: int = 8,
        dropout: float = 0.0,
    ) -> None:
        if depth not in RESNET_LAYERS:
            raise ValueError(f"ResNet depth must be one of 50, 101, 152; got {depth}")
        if output_stride not in DILATION_FOR_STRIDE:
            raise ValueError(f"output_stride must be 8, 16 or 32; got {output_stride}")
        if width < 1:
            raise ValueError(f"width must be positive; got {width}")
        # Skip ResNet.__init__ (it hard-codes width 64) but keep its _make_layer.
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64  # Bottleneck inner width == planes, as in torchvision
        self.depth = depth
        self.width = width
        self.output_stride = output_stride
        layers = RESNET_LAYERS[depth]
        dilate = DILATION_FOR_STRIDE[output_stride]
        block = tv_resnet.Bottleneck
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2, dilate=dilate[2])
        self.out_channels = 8 * width * block.expansion
        self.block_dropout = nn.Dropout(dropout) if dropout > 0 else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        for blk in self.layer4:
            x = blk(x)
            if self.block_dropout is not None:
                x = self.block_dropout(x)
        return x


def _load_imagenet_state(depth: int, timeout_s: float) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """ImageNet state dict and its ``{"url", "sha256"}`` from the verified cache
    (:func:`instseg_lib.models.weights.load_imagenet_state`; downloaded first if need be)."""
    return weights.load_imagenet_state(f"resnet{depth}", timeout_s)


def load_imagenet_weights(
    backbone: ScaledResNet, pretrained: bool, timeout_s: float = 10.0, *, fallback: bool | None = None
) -> dict[str, Any]:
    """Initialise ``backbone`` from ImageNet (§2.3: "We initialize an FCRN from ResNet").

    Returns the provenance record ``{"pretrained": bool, "weights": str|None,
    "reason": str}``, plus ``url`` and ``sha256`` of the file when the weights loaded.
    Pretraining needs ``width == 64``; at other widths the backbone keeps its random
    initialisation (one warning). At width 64, weights that cannot be had (no network,
    ``$INSTSEG_OFFLINE`` with nothing cached, a failed download) raise
    :class:`~instseg_lib.models.weights.WeightsUnavailableError`, unless ``fallback`` (default:
    ``$INSTSEG_INIT_FALLBACK=standin``, :func:`~instseg_lib.models.weights.fallback_requested`)
    asks to go on: the backbone then keeps its random initialisation, one warning is issued
    and the record says why (:func:`instseg_lib.pretrain.initialise_backbone` uses the stand-in
    pretraining instead).
    """
    if not pretrained:
        return {"pretrained": False, "weights": None, "reason": "pretrained=False"}
    if backbone.width != 64:
        reason = (
            f"ImageNet weights exist for width 64 only (got width {backbone.width}); "
            "random initialisation"
        )
        return _fallback(reason, key="width")
    name = f"{_WEIGHTS[backbone.depth]}"
    try:
        state, source = _load_imagenet_state(backbone.depth, timeout_s)
    except weights.WeightsUnavailableError as err:
        if not (weights.fallback_requested() if fallback is None else fallback):
            raise
        reason = (f"{name} not loaded: {err.cause}; {weights.FALLBACK_ENV} asks to go on: random "
                  "initialisation instead of ImageNet pretraining")
        return _fallback(reason, key=f"unavailable {name}")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    backbone.load_state_dict(state, strict=True)
    return {"pretrained": True, "weights": name, "reason": "loaded", **source}


def _fallback(reason: str, key: str) -> dict[str, Any]:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(reason, RuntimeWarning, stacklevel=3)
    return {"pretrained": False, "weights": None, "reason": reason}
