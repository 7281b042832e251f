"""Fully convolutional residual networks, FCRN (Wu, Shen & van den Hengel 2016, §2.3).

An FCRN is a ResNet-50/101/152 without its 7x7 pooling and fc layer, dilated to output
stride 8 or 16, topped by a ``k x k`` convolution with dilation ``d`` (the classifier
"handles the FoV"), and upsampled bilinearly to the input size. Table 1 varies depth,
resolution (output stride), kernel and dilation; the field of view is
``((k - 1) * d + 1) * stride`` (:func:`field_of_view`).

Options from §1: dropout in the top residual blocks, a multi-layer non-linear classifier
(``classifier="mlp"``) and multi-view testing (:func:`predict_multiview`).

:class:`FCRNLocalization` is the localization network of §2.1: same backbone, a head with
4 channels per foreground class (the paper's 80 = 20 x 4; "we do not regress
bounding-boxes for background pixels", §2.3), predicting per pixel
``(dy, dx, h, w)`` = (box-centre y - pixel y, box-centre x - pixel x, box height,
box width), the convention of ``instseg_lib.data.targets.wu_box_targets``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import RESNET_LAYERS, ScaledResNet, load_imagenet_weights

CLASSIFIERS = ("linear", "mlp")


def field_of_view(kernel: int, dilation: int, stride: int) -> int:
    """FoV of the top classifier in input pixels: ``((k - 1) * d + 1) * stride``.

    Table 1: e.g. k=3, d=6 at 1/8 gives 104; k=5, d=12 at 1/8 gives 392.
    """
    return ((kernel - 1) * dilation + 1) * stride


@dataclass(frozen=True)
class FCRNConfig:
    """One FCRN of Table 1/3/7 (§2.3).

    ``width`` is the backbone base width (64 standard, 16 a quarter); ``num_classes``
    counts background (21 on VOC). ``pretrained`` asks for ImageNet weights (width 64
    only; offline the model falls back to random init and says so in ``init_info``).
    """

    depth: int = 50
    output_stride: int = 8
    kernel: int = 3
    dilation: int = 12
    width: int = 64
    num_classes: int = 21
    dropout: float = 0.0
    classifier: Literal["linear", "mlp"] = "linear"
    pretrained: bool = False

    @property
    def fov(self) -> int:
        """Field of view of the classifier in input pixels (Table 1 "FoV")."""
        return field_of_view(self.kernel, self.dilation, self.output_stride)

    @property
    def feature_channels(self) -> int:
        """Channels of the backbone output (2048 at width 64)."""
        return 32 * self.width

    def validate(self, crop_size: int | None = None) -> "FCRNConfig":
        """Raise ``ValueError`` for a config that cannot be trained as asked.

        With ``crop_size``, a FoV larger than the training crop is refused: "if the size
        of FoV is larger than the size of image crops during training, the outer part
        of the kernels cannot be properly learned" (§3.1).
        """
        if self.depth not in RESNET_LAYERS:
            raise ValueError(f"FCRN depth must be one of 50, 101, 152 (Table 1); got {self.depth}")
        if self.output_stride not in (8, 16):
            raise ValueError(f"FCRN output_stride must be 8 or 16 (Table 1); got {self.output_stride}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"classifier kernel must be a positive odd integer; got {self.kernel}")
        if self.dilation < 1:
            raise ValueError(f"classifier dilation must be >= 1; got {self.dilation}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1; got {self.width}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes counts background and must be >= 2; got {self.num_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}")
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}; got {self.classifier!r}")
        if crop_size is not None and self.fov > crop_size:
            raise ValueError(
                f"FoV {self.fov} px (kernel {self.kernel}, dilation {self.dilation}, stride "
                f"{self.output_stride}) exceeds the {crop_size} px training crop; the outer "
                f"kernel taps would only see padding (Wu et al. §3.1). Lower the dilation or "
                f"kernel, or train on larger crops."
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _make_head(config: FCRNConfig, out_channels: int) -> nn.Module:
    """The top classifier: one dilated ``k x k`` conv, or a 2-layer non-linear one (§1)."""
    k, d = config.kernel, config.dilation
    pad = d * (k - 1) // 2
    cin = config.feature_channels
    if config.classifier == "linear":
        head: nn.Module = nn.Conv2d(cin, out_channels, k, padding=pad, dilation=d)
    else:
        hidden = 8 * config.width  # 512 at standard width
        head = nn.Sequential(
            nn.Conv2d(cin, hidden, k, padding=pad, dilation=d, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity(),
            nn.Conv2d(hidden, out_channels, 1),
        )
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            # Small init for the new layers on top of the (pre-trained) trunk, as in DeepLab.
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return head


class FCRN(nn.Module):
    """Semantic FCRN (§2.3): ``(B, 3, H, W)`` image -> ``(B, num_classes, H, W)`` logits.

    ``init_info`` records whether ImageNet weights were loaded (for provenance).
    """

    def __init__(self, config: FCRNConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = ScaledResNet(
            config.depth, config.width, config.output_stride, dropout=config.dropout
        )
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.classifier = _make_head(config, self.out_channels)
        self.init_info: dict[str, Any] = load_imagenet_weights(self.backbone, config.pretrained)

    @property
    def out_channels(self) -> int:
        return self.config.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Head output at the feature stride (before upsampling)."""
        return self.classifier(self.dropout(self.backbone(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.forward_features(x)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class FCRNLocalization(FCRN):
    """Localization net of §2.1: per-pixel, class-wise boxes ``(dy, dx, h, w)``.

    Output ``(B, 4 * (num_classes - 1), H, W)`` in **pixels**; channels
    ``4 * (c - 1) : 4 * c`` belong to foreground class ``c`` (background has none,
    §2.3). The head predicts values normalised by the input size (y-type channels by
    ``H``, x-type by ``W``) and ``forward`` multiplies them back, so regression starts
    well scaled at any image size; :func:`instseg_lib.losses.weighted_smooth_l1`
    normalises the same way.
    """

    @property
    def out_channels(self) -> int:
        return 4 * (self.config.num_classes - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = super().forward(x)
        h, w = x.shape[-2:]
        scale = y.new_tensor([h, w, h, w]).repeat(self.config.num_classes - 1)
        return y * scale.view(1, -1, 1, 1)


def select_class_boxes(box_pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pick each pixel's 4 box channels of its class (§2.1, class-wise regression).

    ``box_pred`` is ``(B, 4 * C_fg, H, W)`` (or already ``(B, 4, H, W)``, returned as is);
    ``labels`` is ``(B, H, W)`` with background 0 and foreground ``1..C_fg``. Pixels of
    background or ignore labels get class 1's channels (callers mask them out).
    """
    if box_pred.shape[1] == 4:
        return box_pred
    b, ch, h, w = box_pred.shape
    n_fg = ch // 4
    idx = (labels.long() - 1).clamp(0, n_fg - 1)
    grouped = box_pred.reshape(b, n_fg, 4, h, w)
    idx = idx[:, None, None].expand(b, 1, 4, h, w)
    return grouped.gather(1, idx).squeeze(1)


@torch.no_grad()
def predict_multiview(
    model: nn.Module,
    images: torch.Tensor,
    scales: Sequence[float] = (1.0,),
    flip: bool = True,
) -> torch.Tensor:
    """Multi-view testing (§1): average softmax probabilities over scales and flips.

    ``images`` is ``(B, 3, H, W)``; returns ``(B, C, H, W)`` probabilities at input size.
    The model is put in eval mode for the call and restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        h, w = images.shape[-2:]
        total: torch.Tensor | None = None
        n = 0
        for s in scales:
            x = images
            if s != 1.0:
                size = (max(1, round(h * s)), max(1, round(w * s)))
                x = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            views = [(x, False), (x.flip(-1), True)] if flip else [(x, False)]
            for v, flipped in views:
                p = model(v).float().softmax(1)
                if flipped:
                    p = p.flip(-1)
                if p.shape[-2:] != (h, w):
                    p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
                total = p if total is None else total + p
                n += 1
        assert total is not None, "scales must not be empty"
        return total / n
    finally:
        model.train(was_training)
