"""The higher-order detection potential of the semantic CRF (Arnab et al. 2016, ECCV, [2] in
Arnab & Torr 2017 §3.1), as a mean-field term of :func:`~instseg_lib.models.dense_crf`.

Arnab & Torr 2017 §3.1 says only that the semantic CRF "include[s] the Higher Order detection
potential described in [2]", that it "encourag[es] consistency between object detections and
segmentations" and that "it also recalibrates detection scores", "formulated for the
differentiable mean field inference algorithm". [2] is not among this book's paper texts, so
the formulation below follows the authors' released mean-field layer (``torrvision/caffe-tvg``,
``MultiStageMeanfield``, read for reference, not copied):

- each detection ``d`` (class ``l_d``, score ``s_d``, foreground pixels ``F_d``) has a binary
  latent variable ``Y_d`` ("the detection is right"), with the prior ``P(Y_d = 1) = p_d``,
  ``p_d = min(s_d / s_max, 1 - eps)``;
- one mean-field iteration, from the pixel marginals ``Q`` of the previous one and
  ``Q(Y_d)``:

  - ``Y_d``'s update: ``log Q(Y_d = 1) += - y_d sum_{i in F_d} (1 - Q_i(l_d))`` and
    ``log Q(Y_d = 0) += - y_d sum_{i in F_d} Q_i(l_d)`` (then normalised), with
    ``y_d = w_y[l_d] s_d / |F_d|``: a detection whose pixels take its class becomes
    likelier, one whose pixels do not, less likely;
  - each pixel ``i in F_d`` receives ``- x_d Q(Y_d = 0)`` on label ``l_d`` and
    ``- x_d Q(Y_d = 1)`` on every other label, with ``x_d = w_x[l_d] s_d``: a believed
    detection pushes its pixels towards its class, a disbelieved one away from it;

- the **recalibrated score** is ``Q(Y_d = 1)`` after the last iteration.

Choices that are ours (the release reads them from files or prototxt values we do not have):

- ``F_d`` is every pixel of the box (the release reads a per-detection foreground mask);
- the prior enters as the log-probabilities ``log(1 - p_d), log p_d`` (the release adds the
  probabilities themselves to the logits; a unary is a negative log-probability);
- ``w_x`` and ``w_y`` (per class, learnable, kept positive by softplus) start at 1;
  ``s_max = 1`` (our scores are in [0, 1]), ``eps = 1e-3``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..detections import Detection, box_pixel_range
from .crf import HigherOrder


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class DetectionPotential(nn.Module):
    """Learnable per-class weights ``w_x``, ``w_y`` of the detection potential (module docstring).

    ``for_image(detections, (h, w))`` binds the detections of one image and returns the
    :class:`~instseg_lib.models.crf.HigherOrder` term that :func:`~instseg_lib.models.dense_crf`
    (``higher_order=``) updates; after inference its ``scores()`` are the recalibrated scores.
    """

    def __init__(self, num_classes: int, x_weight: float = 1.0, y_weight: float = 1.0, *,
                 max_score: float = 1.0, eps: float = 1e-3) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not (x_weight > 0 and y_weight > 0 and max_score > 0 and 0 < eps < 0.5):
            raise ValueError("x_weight, y_weight and max_score must be positive and eps in (0, 0.5)")
        self.num_classes, self.max_score, self.eps = num_classes, float(max_score), float(eps)
        self.raw_x = nn.Parameter(torch.full((num_classes,), _inverse_softplus(x_weight)))
        self.raw_y = nn.Parameter(torch.full((num_classes,), _inverse_softplus(y_weight)))

    @property
    def w_x(self) -> torch.Tensor:
        return F.softplus(self.raw_x)

    @property
    def w_y(self) -> torch.Tensor:
        return F.softplus(self.raw_y)

    def for_image(self, detections: Sequence[Detection], size: tuple[int, int]) -> "BoundDetections":
        for d in detections:
            if not 0 <= d.class_id < self.num_classes:
                raise ValueError(f"detection class {d.class_id} is outside 0..{self.num_classes - 1}")
        return BoundDetections(self, list(detections), (int(size[0]), int(size[1])))


class BoundDetections(HigherOrder):
    """The detection potential of one image during one mean-field run."""

    def __init__(self, potential: DetectionPotential, detections: list[Detection], size: tuple[int, int]) -> None:
        self.potential, self.detections, self.size = potential, detections, size
        h, w = size
        self._pixels: list[torch.Tensor] = []
        for d in detections:
            r0, r1, c0, c1 = box_pixel_range(d.box, h, w)
            rows = torch.arange(r0, r1).repeat_interleave(c1 - c0)
            cols = torch.arange(c0, c1).repeat(r1 - r0)
            self._pixels.append(rows * w + cols)
        self.q_y: torch.Tensor | None = None

    def _prior(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        p = torch.tensor([min(d.score / self.potential.max_score, 1 - self.potential.eps) for d in self.detections],
                         device=device, dtype=dtype).clamp_min(self.potential.eps)
        return torch.stack([torch.log1p(-p), torch.log(p)], 1)  # (D, 2): log P(Y=0), log P(Y=1)

    def start(self, h: int, w: int) -> None:
        if (h, w) != self.size:
            raise ValueError(f"detections were bound for a {self.size} image, the CRF runs on {(h, w)}")
        self.q_y = None

    def step(self, q: torch.Tensor) -> torch.Tensor:
        msg = torch.zeros_like(q)
        if not self.detections:
            return msg
        prior = self._prior(q.device, q.dtype)
        q_y = prior.exp() if self.q_y is None else self.q_y
        wx, wy = self.potential.w_x.to(q.dtype), self.potential.w_y.to(q.dtype)
        logits_y = []
        for k, (d, idx) in enumerate(zip(self.detections, self._pixels)):
            idx = idx.to(q.device)
            if idx.numel() == 0:
                logits_y.append(prior[k])
                continue
            ql = q[idx, d.class_id]
            y_mult = wy[d.class_id] * d.score / idx.numel()
            logits_y.append(prior[k] - y_mult * torch.stack([ql.sum(), (1 - ql).sum()]))
            x_mult = wx[d.class_id] * d.score
            row = (-x_mult * q_y[k, 1]).expand(q.shape[1]).clone()
            row[d.class_id] = -x_mult * q_y[k, 0]
            msg = msg.index_add(0, idx, row.expand(idx.numel(), -1))
        self.q_y = torch.softmax(torch.stack(logits_y), 1)
        return msg

    def scores(self) -> torch.Tensor:
        """``(D,)`` recalibrated scores ``Q(Y_d = 1)`` (the prior before any iteration)."""
        if self.q_y is None:
            return self._prior(torch.device("cpu"), torch.float32).exp()[:, 1] if self.detections else torch.zeros(0)
        return self.q_y[:, 1]
