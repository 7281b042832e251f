"""PFN's instance-level network (Liang et al. 2015, §3.2, Fig. 3).

On the DeepLab-LargeFOV trunk (:class:`~instseg_lib.models.vgg.VGGTrunk`, initialised from
the trained category-level network, §3.1) the instance-level network predicts

1. **pixel-wise instance locations** (§3.2, Eq. 2-4): five multi-scale streams "attached to
   the input image, the output of each of the first three max pooling layers and the last
   convolutional layer (fc7)". Each stream has "two layers (first layer: 128 convolutional
   filters, second layer: 130 convolutional filters)": a conv to 128 maps, then -- after
   the two coordinate maps are concatenated (Eq. 3, "130 = 128 + 2 channels") -- a conv to
   the D location channels, with its own loss (deep supervision). The five predictions are
   "accordingly downsampled and then concatenated", and a 1x1 convolution gives the final
   (fused) location maps at stride 8;
2. **instance numbers** (§3.2): "the feature maps of the last convolutional layer from the
   previously trained category-level segmentation network and the instance location
   predictions are combined together to form the fused feature maps with 1024 + 6
   channels", a 3x3 stride-2 convolution to 128 maps, then a fully-connected layer with
   1024 outputs and the C-dimensional prediction.

Choices the paper leaves open (each also in :class:`PFNConfig`):

- kernel sizes of the stream layers: 3x3 both ("the spatial padding for each convolutional
  layer is set so that the spatial resolution of feature maps is preserved");
- channel counts scale with the trunk width (128 and 1024 at width 64): ``2 * width`` and
  ``16 * width``;
- coordinate maps (Eq. 3 sets them to the raw indices ``ix``, ``iy``): we use the pixel-centre
  position normalised to ``[0, 1]`` by the map size, ``((ix + 0.5) / w_v, (iy + 0.5) / h_v)``,
  so that all five streams see one frame, the frame of the image-normalised location
  targets (:func:`instseg_lib.data.targets.pfn_instance_targets`), whatever their stride;
- "downsampled": area (average) pooling to the fc7 map size;
- the instance-number branch flattens a fixed-size map into its fc layer in the paper (so it
  fixes the input size); we **global-average-pool** the 128 maps first, so any image size
  works; the fc has 1024 outputs and ReLU, then a linear layer to C;
- by default the branch reads this network's own fc7 (its trunk starts as the category
  network); pass ``category_features`` to :meth:`PFN.forward` to feed the separate category
  network's fc7 instead, as Fig. 3 draws it;
- "PFN w/o multiscale" ("using only one straightforward layer to predict pixel-wise instance
  locations"): one 3x3 conv on fc7 (and the coordinate maps), no other stream, no fusion;
- "PFN fusing summation": the five predictions are summed (no 1x1 weights: §4.3 credits the
  1x1 layer with "adaptively weigh[ing] the contribution ... of each scale").

New layers start from N(0, 0.01) weights and zero biases (§3.2 "Network Training").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..data.targets import PFN_LOCATION_CHANNELS
from .vgg import LARGEFOV_DILATION, VGGTrunk, load_vgg_imagenet_weights

FUSIONS = ("concat", "sum")
NUMBER_FEATURES = ("both", "category", "locations")


@dataclass(frozen=True)
class PFNConfig:
    """One PFN instance-level network; the switches are the ablations of Tables 1-2.

    - ``num_classes``: C object classes (the instance-number vector; VOC: 20);
    - ``arch``/``width``/``fc6_dilation``/``dropout``/``batch_norm``: the trunk (§3.1);
    - ``location_variant``: a key of ``PFN_LOCATION_CHANNELS`` ("PFN" = ``pfn6``; the
      "Location prediction" rows change "the channel number in the final prediction layer");
    - ``multiscale=False``: "PFN w/o multiscale"; ``coordinate_maps=False``: "PFN w/o
      coordinate maps"; ``fusion="sum"``: "PFN fusing summation";
    - ``number_features``: ``"both"`` (PFN), ``"locations"`` ("PFN w/o category-level":
      only the location maps), ``"category"`` ("PFN w/o instance-level": only fc7);
    - ``unified_classes`` > 0: "PFN unified", a ``unified_classes``-way (C + 1) category
      classifier on fc7 trained in the same network;
    - ``head_channels``/``number_hidden``/``number_fc``: 128 / 128 / 1024 at width 64
      (``None``: ``2 * width``, ``2 * width``, ``16 * width``);
    - ``pretrained``: ImageNet weights for the trunk (the paper starts from the trained
      category network instead; recipes load that state dict).
    """

    num_classes: int = 20
    arch: Literal["vgg16", "alexnet"] = "vgg16"
    width: int = 64
    fc6_dilation: int = LARGEFOV_DILATION
    dropout: float = 0.5
    batch_norm: bool = False
    location_variant: str = "pfn6"
    multiscale: bool = True
    coordinate_maps: bool = True
    fusion: Literal["concat", "sum"] = "concat"
    number_features: Literal["both", "category", "locations"] = "both"
    unified_classes: int = 0
    head_channels: int | None = None
    number_hidden: int | None = None
    number_fc: int | None = None
    pretrained: bool = False

    @property
    def location_dim(self) -> int:
        """D, the channels of a location prediction (6 for PFN)."""
        return len(PFN_LOCATION_CHANNELS[self.location_variant])

    def validate(self) -> "PFNConfig":
        """Raise ``ValueError`` naming the field of a config that cannot be built."""
        if self.num_classes < 1:
            raise ValueError(f"num_classes (object classes, no background) must be >= 1; got {self.num_classes}")
        if self.location_variant not in PFN_LOCATION_CHANNELS:
            raise ValueError(f"location_variant must be one of {', '.join(PFN_LOCATION_CHANNELS)}; "
                             f"got {self.location_variant!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}; got {self.fusion!r}")
        if self.number_features not in NUMBER_FEATURES:
            raise ValueError(f"number_features must be one of {NUMBER_FEATURES}; got {self.number_features!r}")
        if self.unified_classes < 0 or self.unified_classes == 1:
            raise ValueError(f"unified_classes is 0 (off) or C + 1 >= 2; got {self.unified_classes}")
        for name in ("head_channels", "number_hidden", "number_fc"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be positive; got {v}")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def coordinate_maps(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Eq. 3's two spatial coordinate maps ``[x^o_1, x^o_2]`` for a ``height x width`` map,
    ``(batch, 2, height, width)``: channel 0 the x position, channel 1 the y position of each
    cell centre, normalised to ``[0, 1]`` (see the module docstring)."""
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) + 0.5) / width
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) / height
    grid = torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)])
    return grid[None].expand(batch, 2, height, width)


def _init_new(module: nn.Module) -> None:
    """§3.2 "Network Training": new layers ~ N(0, 0.01), zero bias."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class PFNStream(nn.Module):
    """One multi-scale prediction stream (§3.2): conv 3x3 -> ``hidden``, ReLU, [+ coordinate
    maps], conv 3x3 -> D location maps, at the resolution of its input."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, coords: bool) -> None:
        super().__init__()
        self.coords = coords
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden + (2 if coords else 0), out_channels, 3, padding=1)
        _init_new(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = F.relu(self.conv1(x))
        if self.coords:
            b, _, hh, ww = h.shape
            h = torch.cat([h, coordinate_maps(b, hh, ww, h)], 1)
        return self.conv2(h)


class PFNSingleLayer(nn.Module):
    """"PFN w/o multiscale": "only one straightforward layer" -- one 3x3 conv on fc7
    (with the coordinate maps unless they are switched off too)."""

    def __init__(self, in_channels: int, out_channels: int, coords: bool) -> None:
        super().__init__()
        self.coords = coords
        self.conv = nn.Conv2d(in_channels + (2 if coords else 0), out_channels, 3, padding=1)
        _init_new(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.coords:
            b, _, hh, ww = x.shape
            x = torch.cat([x, coordinate_maps(b, hh, ww, x)], 1)
        return self.conv(x)


class PFNNumberBranch(nn.Module):
    """The instance-number predictor (§3.2): [category fc7, location maps] -> conv 3x3 stride
    2 -> ``hidden`` maps, ReLU -> global average pooling (ours; the paper's fc reads the
    flattened map) -> fc ``fc`` + ReLU -> fc C."""

    def __init__(self, in_channels: int, hidden: int, fc: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(hidden, fc)
        self.fc2 = nn.Linear(fc, num_classes)
        _init_new(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = F.relu(self.conv(x)).mean((2, 3))
        return self.fc2(F.relu(self.fc1(h)))


class PFN(nn.Module):
    """PFN's instance-level network: image -> instance locations and instance numbers.

    ``forward(x, category_features=None)`` returns a dict:

    - ``locations``: ``(B, D, h, w)`` fused location maps at stride 8 (``h = ceil(H / 8)``),
      in the units of the targets (image-normalised positions by default);
    - ``streams``: ``{tap: (B, D, h_m, w_m)}``, each stream's own prediction at its own
      resolution (deep supervision, Eq. 4); empty for "w/o multiscale";
    - ``numbers``: ``(B, C)`` predicted instance numbers;
    - ``semantic``: ``(B, C + 1, h, w)`` logits, only for "PFN unified".

    :func:`instseg_lib.losses.pfn_loss` consumes it; :meth:`predict` upsamples the locations
    to the input size for the test stage (:func:`instseg_lib.grouping.pfn_group`).
    """

    def __init__(self, config: PFNConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        w = config.width
        self.backbone = VGGTrunk(config.arch, w, 8, config.fc6_dilation, config.dropout, config.batch_norm)
        d = config.location_dim
        hidden = config.head_channels or 2 * w
        if config.multiscale:
            self.taps: tuple[str, ...] = self.backbone.streams
            self.streams = nn.ModuleDict({
                t: PFNStream(self.backbone.stream_channels[t], hidden, d, config.coordinate_maps) for t in self.taps})
            self.single = None
            self.fuse = nn.Conv2d(d * len(self.taps), d, 1) if config.fusion == "concat" else None
            if self.fuse is not None:
                _init_new(self.fuse)
        else:
            self.taps = ("fc7",)
            self.streams = nn.ModuleDict()
            self.single = PFNSingleLayer(self.backbone.out_channels, d, config.coordinate_maps)
            self.fuse = None
        fc7 = self.backbone.out_channels
        n_in = {"both": fc7 + d, "category": fc7, "locations": d}[config.number_features]
        self.number_branch = PFNNumberBranch(n_in, config.number_hidden or 2 * w, config.number_fc or 16 * w,
                                             config.num_classes)
        self.semantic = nn.Conv2d(fc7, config.unified_classes, 1) if config.unified_classes else None
        if self.semantic is not None:
            _init_new(self.semantic)
        self.init_info: dict[str, Any] = load_vgg_imagenet_weights(self.backbone, config.pretrained)

    # Parameter groups for the "separate finetune" row and the paper's two learning rates.
    def number_parameters(self) -> list[nn.Parameter]:
        """The instance-number branch ("PFN separate finetune" trains only these second)."""
        return list(self.number_branch.parameters())

    def new_parameters(self) -> list[nn.Parameter]:
        """Every layer not in the category network (§4.1: learning rate 0.01, not 0.001)."""
        trunk = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in trunk]

    def forward(self, x: torch.Tensor, category_features: torch.Tensor | None = None) -> dict[str, Any]:  # noqa: D102
        feats = self.backbone.forward_features(x, self.taps)  # every tap list ends with fc7
        fc7 = feats["fc7"]
        size = fc7.shape[-2:]
        out: dict[str, Any] = {"streams": {}}
        if self.single is not None:
            loc = self.single(fc7)
        else:
            preds = {t: self.streams[t](feats[t]) for t in self.taps}
            out["streams"] = preds
            # "accordingly downsampled": area pooling of each stream's map to the fc7 grid
            down = [p if p.shape[-2:] == size else F.adaptive_avg_pool2d(p, size) for p in preds.values()]
            loc = self.fuse(torch.cat(down, 1)) if self.fuse is not None else torch.stack(down).sum(0)
        out["locations"] = loc
        cat = fc7 if category_features is None else category_features
        if cat.shape[-2:] != size:
            raise ValueError(f"category_features must be on the fc7 grid {tuple(size)}; got {tuple(cat.shape[-2:])}")
        nin = {"both": lambda: torch.cat([cat, loc], 1), "category": lambda: cat,
               "locations": lambda: loc}[self.config.number_features]()
        out["numbers"] = self.number_branch(nin)
        if self.semantic is not None:
            out["semantic"] = self.semantic(fc7)
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor, category_features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Test stage (§3.3): ``locations`` (B, D, H, W) bilinearly upsampled to the input
        size and ``numbers`` (B, C); the mode of the module is restored afterwards."""
        was = self.training
        self.eval()
        try:
            out = self.forward(x, category_features)
        finally:
            self.train(was)
        loc = F.interpolate(out["locations"], size=x.shape[-2:], mode="bilinear", align_corners=False)
        res = {"locations": loc, "numbers": out["numbers"]}
        if "semantic" in out:
            res["semantic"] = F.interpolate(out["semantic"], size=x.shape[-2:], mode="bilinear", align_corners=False)
        return res
