"""Pixel embeddings and seediness heads of Fathi et al. 2017, "Semantic instance segmentation
via deep metric learning".

The network (§3.1, Fig. 1) is a shared fully convolutional trunk with two output heads:

- the **embedding head** (§3.2) outputs a ``[h, w, d]`` tensor, one ``d``-dimensional
  vector ``e_p`` per pixel (``d = 64`` in the paper; "we also tried various sizes of
  embeddings from 2 to 256", §4.3);
- the **classification / seediness head** (§3.4) outputs, for every similarity threshold
  ``τ ∈ T = {0.25, 0.5, 0.75, 0.9}``, a ``[h, w, C + 1]`` tensor ``C^τ_pc``: the
  probability that the mask grown from seed ``p`` at threshold ``τ`` is an instance of
  class ``c`` (``c = 0`` background = "a bad mask").

The similarity of two pixels is Eq. 1, ``σ(p, q) = 2 / (1 + exp(||e_p - e_q||²))``; the
helpers here compute it and its logarithms from squared distances in a numerically stable
way, and convert a threshold ``τ`` on σ into one on the squared distance.

Trunk (§3.5): DeepLab v2 / ResNet-101 at output stride 8 with its final (classifier)
layer "chopped off"; here :class:`~.backbones.ScaledResNet`, the dilated trunk the FCRN
of Wu et al. uses (any depth and width), whose ``layer4`` map feeds both heads. Outputs
are upsampled bilinearly to the input size (§3.2: "a [h, w, d] tensor, where h is the
image height, w is the image width"). Optionally (§3.6) the trunk runs on an image pyramid
at scales ``(0.25, 0.5, 1.0, 2.0)`` and the feature maps are "rescaled to the same size,
and averaged" before the heads.

Choices the paper leaves open (ours):

- **Head architecture.** Not described. Each head is a 3x3 conv (``8 * width`` = 512
  channels at standard width, as FCRN's non-linear classifier) + BN + ReLU, then a 1x1
  conv. The seediness head's 1x1 conv has ``T * (C + 1)`` outputs: one linear softmax
  classifier per τ ("we train a different classification model for each value of τ",
  §3.4) on a hidden layer they share.
- **Initialisation** of the new layers: the classifier's last conv ~ N(0, 0.01²) (as
  DeepLab/FCRN: near-uniform class probabilities at the start); the embedding head keeps
  PyTorch's default init so that embeddings start spread out rather than all coinciding.
- **Multi-scale averaging** resizes every pyramid level's features bilinearly to the
  scale-1 feature size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import RESNET_LAYERS, ScaledResNet, load_imagenet_weights

#: Similarity thresholds of the seediness classifiers, §3.4 ("T = {0.25, 0.5, 0.75, 0.9}").
FATHI_TAUS: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
#: Image pyramid of §3.6.
PYRAMID_SCALES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
#: Embedding sizes the paper tried (§4.3: "from 2 to 256; 64 was best").
EMBEDDING_DIM_RANGE: tuple[int, int] = (2, 256)


# --------------------------------------------------------------------------- Eq. 1
def check_taus(taus: Sequence[float]) -> tuple[float, ...]:
    """Validate similarity thresholds: each ``0 < τ < 1`` (σ lies in (0, 1]), no repeats.

    ``τ = 1`` would keep only exact copies of the seed's embedding and ``τ <= 0`` every
    pixel, so both are refused. Returns the thresholds as a tuple of floats.
    """
    out = tuple(float(t) for t in taus)
    if not out:
        raise ValueError("need at least one similarity threshold τ")
    bad = [t for t in out if not (0.0 < t < 1.0) or math.isnan(t)]
    if bad:
        raise ValueError(f"similarity thresholds τ must lie in (0, 1); got {bad}")
    if len(set(out)) != len(out):
        raise ValueError(f"similarity thresholds τ must be distinct; got {out}")
    return out


def distance_threshold(tau: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Squared-distance threshold of τ: ``σ(p, q) >= τ  <=>  ||e_p - e_q||² <= ln(2/τ - 1)``.

    From Eq. 1: ``2 / (1 + exp(d²)) >= τ`` is ``exp(d²) <= 2/τ - 1``. E.g. τ = 0.5 gives
    ``ln 3 ≈ 1.0986``; τ = 0.9 gives ``ln(11/9) ≈ 0.2007``.
    """
    t = torch.as_tensor(tau, dtype=torch.float64)
    if t.numel() == 0 or not bool(((t > 0) & (t < 1)).all()):
        raise ValueError(f"similarity thresholds τ must lie in (0, 1); got {t.tolist()}")
    return torch.log(2.0 / t - 1.0).to(torch.float32)


def similarity(sq_dist: torch.Tensor) -> torch.Tensor:
    """Eq. 1 from squared distances: ``σ = 2 / (1 + exp(d²))``; 1 at d = 0, -> 0 far away.

    Written as ``exp(log 2 - softplus(d²))`` so it never overflows.
    """
    return torch.exp(log_similarity(sq_dist))


def log_similarity(sq_dist: torch.Tensor) -> torch.Tensor:
    """``log σ = log 2 - softplus(d²)`` (stable for every ``d² >= 0``; 0 at d = 0)."""
    return math.log(2.0) - F.softplus(sq_dist)


def log_dissimilarity(sq_dist: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """``log(1 - σ) = log tanh(d² / 2)``, with ``d²`` held at ``>= eps``.

    ``1 - σ = (exp(d²) - 1) / (exp(d²) + 1) = tanh(d²/2)``, which goes to 0 (its log to
    -inf) as d -> 0: two pixels of different instances with coinciding embeddings (e.g.
    at initialisation) would give an infinite loss. The value uses ``max(d², eps)``; the
    gradient passes through unchanged (straight-through), so such pairs are still pushed
    apart instead of receiving the zero gradient of a hard clamp. At ``eps = 1e-4`` the
    largest per-pair loss is ``-log tanh(5e-5) ≈ 9.9``.
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive; got {eps}")
    held = sq_dist + (eps - sq_dist).clamp(min=0).detach()
    return torch.log(torch.tanh(held / 2))


def pairwise_sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i - b_j||²`` for ``a`` (N, d), ``b`` (M, d) as ``A² + B² - 2AB`` (§3.3), >= 0.

    The expansion is one matrix product (no (N, M, d) intermediate); rounding can make it
    slightly negative, hence the clamp at 0.
    """
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return sq.clamp(min=0)


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class FathiConfig:
    """One Fathi et al. network (§3.5): trunk, embedding size, thresholds, pyramid.

    ``depth``/``width``/``output_stride`` select the dilated ResNet trunk (the paper:
    ResNet-101, standard width 64, output stride 8); ``num_classes`` counts background
    (21 on VOC); ``embedding_dim`` is d (§3.2, 64); ``taus`` the thresholds of the
    seediness classifiers (§3.4); ``multiscale`` switches the §3.6 image pyramid at
    ``scales``; ``pretrained`` asks for ImageNet weights (width 64 only).
    """

    depth: int = 101
    output_stride: int = 8
    width: int = 64
    num_classes: int = 21
    embedding_dim: int = 64
    taus: tuple[float, ...] = FATHI_TAUS
    multiscale: bool = False
    scales: tuple[float, ...] = PYRAMID_SCALES
    pretrained: bool = False

    @property
    def feature_channels(self) -> int:
        """Channels of the trunk output (2048 at width 64), the heads' input."""
        return 32 * self.width

    @property
    def hidden_channels(self) -> int:
        """Width of each head's hidden layer (512 at width 64)."""
        return 8 * self.width

    def validate(self) -> "FathiConfig":
        """Raise ``ValueError`` naming the first field that cannot be built."""
        lo, hi = EMBEDDING_DIM_RANGE
        if self.depth not in RESNET_LAYERS:
            raise ValueError(f"trunk depth must be one of {sorted(RESNET_LAYERS)}; got {self.depth}")
        if self.output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16; got {self.output_stride}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1; got {self.width}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes counts background and must be >= 2; got {self.num_classes}")
        if not isinstance(self.embedding_dim, int) or not lo <= self.embedding_dim <= hi:
            raise ValueError(f"embedding_dim d must be an integer in [{lo}, {hi}] (§4.3); got {self.embedding_dim}")
        check_taus(self.taus)
        if not self.scales or any(not s > 0 for s in self.scales):
            raise ValueError(f"pyramid scales must be positive; got {self.scales}")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- heads
def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EmbeddingHead(nn.Module):
    """§3.2: features ``(B, Cin, h, w)`` -> embeddings ``(B, d, h, w)`` (not upsampled)."""

    def __init__(self, in_channels: int, dim: int = 64, hidden: int = 512) -> None:
        super().__init__()
        lo, hi = EMBEDDING_DIM_RANGE
        if not lo <= dim <= hi:
            raise ValueError(f"embedding dimension must be in [{lo}, {hi}]; got {dim}")
        self.dim = dim
        self.body = _conv_bn_relu(in_channels, hidden)
        self.out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.out(self.body(x))


class SeedinessHead(nn.Module):
    """§3.4: features -> mask-class logits ``(B, T, C + 1, h, w)``, one classifier per τ.

    Softmax over dim 2 gives ``C^τ_pc``; :func:`seediness_from_probs` in
    :mod:`instseg_lib.grouping.seeds` turns them into the seediness ``S_p``.
    """

    def __init__(self, in_channels: int, num_classes: int, taus: Sequence[float] = FATHI_TAUS,
                 hidden: int = 512) -> None:
        super().__init__()
        self.taus = check_taus(taus)
        self.num_classes = num_classes
        self.body = _conv_bn_relu(in_channels, hidden)
        self.out = nn.Conv2d(hidden, len(self.taus) * num_classes, 1)
        # Near-uniform class probabilities at the start, as DeepLab/FCRN initialise classifiers.
        nn.init.normal_(self.out.weight, std=0.01)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.out(self.body(x))
        b, _, h, w = y.shape
        return y.view(b, len(self.taus), self.num_classes, h, w)


class FathiOutput(NamedTuple):
    """``embedding`` (B, d, H, W) and ``logits`` (B, T, C + 1, H, W), both at input size."""

    embedding: torch.Tensor
    logits: torch.Tensor

    def class_probs(self) -> torch.Tensor:
        """``C^τ_pc`` (B, T, C + 1, H, W): softmax over the classes of each τ (§3.4)."""
        return self.logits.float().softmax(2)


class FathiNet(nn.Module):
    """Fathi et al. network (Fig. 1): ``(B, 3, H, W)`` -> :class:`FathiOutput`.

    Shared trunk (§3.5; :class:`~.backbones.ScaledResNet` at ``output_stride``, no
    classifier: "chop off the final layer"), then the embedding and the seediness heads;
    both outputs upsampled bilinearly to the input size (§3.2). With
    ``config.multiscale`` the trunk sees the §3.6 pyramid and averages its features.
    ``init_info`` records whether ImageNet weights were loaded.
    """

    def __init__(self, config: FathiConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = ScaledResNet(config.depth, config.width, config.output_stride)
        cin, hid = config.feature_channels, config.hidden_channels
        self.embedding_head = EmbeddingHead(cin, config.embedding_dim, hid)
        self.seediness_head = SeedinessHead(cin, config.num_classes, config.taus, hid)
        self.init_info: dict[str, Any] = load_imagenet_weights(self.backbone, config.pretrained)

    @property
    def taus(self) -> tuple[float, ...]:
        return self.seediness_head.taus

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk features; with ``multiscale`` the average over the pyramid (§3.6)."""
        if not self.config.multiscale:
            return self.backbone(x)
        h, w = x.shape[-2:]
        # "rescaled to the same size": that of the scale-1 features.
        size = _feature_size(self.config.output_stride, h, w)
        maps = []
        for s in self.config.scales:
            xs = x if s == 1.0 else F.interpolate(
                x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear", align_corners=False)
            f = self.backbone(xs)
            if f.shape[-2:] != size:
                f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
            maps.append(f)
        return torch.stack(maps).mean(0)

    def forward_features(self, x: torch.Tensor) -> FathiOutput:
        """Both heads at the feature stride (before upsampling)."""
        f = self.features(x)
        return FathiOutput(self.embedding_head(f), self.seediness_head(f))

    def forward(self, x: torch.Tensor) -> FathiOutput:  # noqa: D102
        emb, logits = self.forward_features(x)
        size = x.shape[-2:]
        emb = F.interpolate(emb, size=size, mode="bilinear", align_corners=False)
        b, t, c, h, w = logits.shape
        logits = F.interpolate(logits.reshape(b, t * c, h, w), size=size, mode="bilinear", align_corners=False)
        return FathiOutput(emb, logits.view(b, t, c, *size))

    def param_groups(self, lr: float, trunk_lr_scale: float = 0.1) -> list[dict[str, Any]]:
        """Optimiser groups: the trunk at ``trunk_lr_scale * lr``, the heads at ``lr``.

        §3.5: "we set the learning rate of the shared features to be smaller than for the
        two output heads, so the original features ... do not change much". The paper
        gives no ratio; 0.1 is our default.
        """
        heads = [p for n, p in self.named_parameters() if not n.startswith("backbone.")]
        return [{"params": list(self.backbone.parameters()), "lr": lr * trunk_lr_scale},
                {"params": heads, "lr": lr}]

    def load_trunk(self, state: dict[str, torch.Tensor]) -> None:
        """Initialise the trunk from a semantic-segmentation net (§3.5: pre-train, then
        "chop off" the final layer).

        ``state`` is an FCRN state dict (``backbone.*`` keys; its classifier is dropped) or a
        bare :class:`ScaledResNet` state dict. Shapes must match (same depth and width).
        """
        if any(k.startswith("backbone.") for k in state):
            state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        self.backbone.load_state_dict(state, strict=True)
        self.init_info = {"pretrained": True, "weights": "semantic-segmentation trunk", "reason": "load_trunk"}


def _feature_size(stride: int, h: int, w: int) -> tuple[int, int]:
    """Spatial size of a ScaledResNet map for an ``h x w`` input (conv1 + maxpool + strides)."""
    def down(n: int, times: int) -> int:
        for _ in range(times):
            n = (n - 1) // 2 + 1
        return n

    return down(h, int(math.log2(stride))), down(w, int(math.log2(stride)))
