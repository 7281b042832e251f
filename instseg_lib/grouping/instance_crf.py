"""The dynamic instance CRF of Arnab & Torr 2017 (§3.2-3.3): label set and unary potentials.

One random variable ``V_i`` per pixel takes a label in ``{0, 1, ..., D}``: 0 is background
and ``k >= 1`` is the instance of detection ``k`` (§3.2); D, and so the label set, changes
with every image ("dynamically instantiated", §3.3). The energy is Eq. 1,
``E(v) = sum_i U(v_i) + sum_{i<j} P(v_i, v_j)``, with the unary of Eq. 2

    U(v_i) = -ln[w1 psi_Box(v_i) + w2 psi_Global(v_i) + w3 psi_Shape(v_i) + eps]

built here from the semantic probabilities ``Q`` (§3.1) and the detections
(:mod:`instseg_lib.detections`):

- **Box** (Eq. 3): ``psi_Box(V_i = k) = Q_i(l_k) s_k`` inside ``B_k``, 0 outside;
- **Global** (Eq. 4): ``psi_Global(V_i = k) = Q_i(l_k)`` everywhere;
- **Shape** (Eq. 5-6): inside ``B_k``, ``Q_{B_k}(l_k) (.) t*``, ``t*`` the shape template,
  warped bilinearly to the box, with the best normalised cross-correlation with
  ``Q_{B_k}(l_k)`` (:class:`ShapeTemplates`);
- **background** (label 0): ``psi_Global(V_i = 0) = Q_i(0)``; Box and Shape give 0, except
  that without the Global term the Box term adds a full-image "background detection"
  (§4.3: "we also have to add in an additional Background detection which encompasses
  the entire image. Otherwise, we cannot classify the background label"):
  ``psi_Box(V_i = 0) = Q_i(0) s_0``.

The result, :class:`InstanceUnaries`'s ``(1, D+1, H, W)`` energies, is the unary that
:class:`instseg_lib.models.crf.DenseCRF` (Potts over any label count, ``unary_kind="energy"``)
takes; its pairwise term is §3.2.4. :func:`dynamic_instance_crf` composes the two (or, with
no CRF given, takes the unary-only marginals ``softmax(-U)``).

**Choices the paper leaves open** (release = ``anuragarnab/dynamically-instantiated-network``
and its Caffe layers ``torrvision/caffe-tvg``, read for reference):

- ``w1, w2, w3`` are learned (§3.2) and initialised to 1 (the release's Scale layers,
  ``filler { value: 1 }``). The release leaves them unconstrained; Eq. 2's logarithm needs
  a non-negative sum, so we learn ``w = softplus(rho)``, ``rho`` initialised to
  ``softplus^-1(1)``: always positive, with a gradient everywhere (a clamp at 0 would
  switch a term off for good).
- ``eps = 1e-5`` (:data:`UNARY_EPS`, pydensecrf's probability clip): Eq. 2 has none, but
  outside every box a Box-only unary is ``-ln 0``. It makes ``U`` finite
  (``-ln 1e-5 = 11.5``), still far above any in-box energy, so a label stays nearly
  impossible outside its box, as Eq. 3 intends.
- Background detection score ``s_0 = 1`` (:data:`BACKGROUND_SCORE`; the release's
  evaluation options use ``background_det_score = 1``, a layer test of it 0.6). It is
  added automatically exactly when the Box term is used without the Global term
  (``background_detection=None``).
- ``s_k`` in Eq. 3: the raw detection score by default (``score_transform="raw"``). The
  paper takes the score recalibrated by the semantic CRF's higher-order detection
  potential (§3.1, ref. [2]); that CRF is not built here. ``"release"`` applies the release
  BoxTerm layer's fallback when that potential is absent, ``e^s / (e^s + e^{1-s})``
  (= sigmoid(2s - 1)), which squeezes scores towards 0.5.
- Shape templates: see :class:`ShapeTemplates` (class-agnostic by default, 32x32, five
  aspect-ratio bins at the quantiles of the training masks' aspect ratios, k-means).
- Ranking score for AP^r (:func:`instance_scores`): ``"mean_q"`` (default, the release's
  ``rescore_y``: the mean of ``Q_i(l_k)`` over the instance's pixels) or ``"detection"``
  (the detection's score, raw or with ``score_transform``). Instances with no pixel are
  dropped (a false-positive detection the CRF ignored, Fig. 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..detections import Detection, box_pixel_range
from .hough import Instances

Term = Literal["box", "global", "shape"]
TERMS: tuple[Term, ...] = ("box", "global", "shape")
ScoreTransform = Literal["raw", "release"]
Ranking = Literal["mean_q", "detection"]

#: Eq. 2's epsilon (ours): pydensecrf's ``unary_from_softmax`` probability clip.
UNARY_EPS = 1e-5
#: Score of the full-image background detection of §4.3 (ours; see the module docstring).
BACKGROUND_SCORE = 1.0
#: Shape templates per aspect-ratio bin: §3.2.3, "roughly 250 shape templates for each of
#: five different aspect ratios".
TEMPLATES_PER_BIN = 250
ASPECT_BINS = 5
#: Side (pixels) at which templates are stored (ours; warped to each box anyway).
TEMPLATE_SIZE = 32


def label_classes(detections: Sequence[Detection]) -> torch.Tensor:
    """``(D+1,)`` long: the class of each label, ``[0, l_1, ..., l_D]`` (label 0 = background)."""
    return torch.tensor([0, *(d.class_id for d in detections)], dtype=torch.long)


def box_masks(detections: Sequence[Detection], height: int, width: int,
              device: torch.device | str | None = None) -> torch.Tensor:
    """``(D, H, W)`` bool: pixel ``i`` in ``B_k`` (:func:`~instseg_lib.detections.box_pixel_range`)."""
    m = torch.zeros(len(detections), height, width, dtype=torch.bool, device=device)
    for k, d in enumerate(detections):
        r0, r1, c0, c1 = box_pixel_range(d.box, height, width)
        m[k, r0:r1, c0:c1] = True
    return m


def transform_scores(scores: torch.Tensor, transform: ScoreTransform = "raw") -> torch.Tensor:
    """``s_k`` of Eq. 3: raw, or the release's ``e^s / (e^s + e^(1-s))`` (see module docstring)."""
    if transform == "raw":
        return scores
    if transform == "release":
        return torch.sigmoid(2 * scores - 1)
    raise ValueError(f"score_transform must be 'raw' or 'release', got {transform!r}")


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def _check_q(q: torch.Tensor, detections: Sequence[Detection]) -> None:
    if q.ndim != 4 or q.shape[0] != 1:
        raise ValueError(f"Q must be (1, C, H, W): one image per call, since D changes per image "
                         f"(§3.3); got shape {tuple(q.shape)}")
    c = q.shape[1]
    bad = [k for k, d in enumerate(detections) if not 1 <= d.class_id < c]
    if bad:
        raise ValueError(f"detection(s) {bad} have class ids outside 1..{c - 1} of Q's {c} channels: "
                         f"{[detections[k].class_id for k in bad]}")


# --------------------------------------------------------------------------------- shape


class ShapeTemplates(nn.Module):
    """Learnable shape templates of the Shape term (§3.2.3, Eq. 5-6).

    ``templates`` is an ``nn.Parameter`` of shape ``(G, B, K, S, S)``: G template groups
    (1, class-agnostic, or one per class id), B aspect-ratio bins, up to K templates per
    bin (``valid`` marks the real ones), each an ``S x S`` soft mask of the object's box.
    ``aspect_centres`` (B,) are the bins' width/height ratios.

    Choices (the paper initialises from [43]'s ~250 templates for each of five aspect
    ratios, "obtained by clustering foreground masks of object instances from the training
    set", and says no more):

    - **class-agnostic by default** (``per_class=False``): "250 for each of five aspect
      ratios" counts templates per ratio, not per class, and the release's ShapeTerm
      layer holds five class-free blobs; ``per_class=True`` clusters each class's masks
      separately and matches a detection only against its class's templates;
    - bins: the five ``(i + 0.5) / 5`` quantiles of the training masks' log aspect
      ratios, each mask joining the nearest centre (the rule used at test time);
    - templates: k-means (scikit-learn, k-means++, fixed seed) of the masks cropped to
      their tight boxes and resized (bilinear, antialiased) to ``S x S``; centroids are
      mean masks, in [0, 1]. A bin with fewer distinct masks than K keeps them all;
    - **matching only the nearest aspect bin** (``aspect_matching="nearest"`` of
      :class:`InstanceUnaries`): the bins exist to be chosen by the box's shape. The
      release's layer scores the templates of all five bins (``"all"``);
    - templates are clamped to [0, 1] where used, so psi_Shape stays a (sub-)probability
      and Eq. 2's logarithm defined whatever a gradient step does to the parameter.
    """

    def __init__(self, templates: torch.Tensor, valid: torch.Tensor, aspect_centres: torch.Tensor,
                 per_class: bool = False) -> None:
        super().__init__()
        if templates.ndim != 5 or templates.shape[-1] != templates.shape[-2]:
            raise ValueError(f"templates must be (G, B, K, S, S), got {tuple(templates.shape)}")
        if valid.shape != templates.shape[:3] or aspect_centres.shape != templates.shape[1:2]:
            raise ValueError("valid must be (G, B, K) and aspect_centres (B,) matching templates")
        self.templates = nn.Parameter(templates.float())
        self.register_buffer("valid", valid.bool())
        self.register_buffer("aspect_centres", aspect_centres.float())
        self.per_class = per_class

    @property
    def num_bins(self) -> int:
        return int(self.templates.shape[1])

    def group(self, class_id: int) -> int:
        if not self.per_class:
            return 0
        if not 0 <= class_id < self.templates.shape[0]:
            raise ValueError(f"no shape templates for class {class_id} (groups 0..{self.templates.shape[0] - 1})")
        return int(class_id)

    def candidate_bins(self, aspect: float, class_id: int,
                       aspect_matching: Literal["nearest", "all"] = "nearest") -> list[int]:
        """Bins to search for a box of width/height ``aspect``: the nearest non-empty one
        (in log ratio), or all non-empty ones. Empty when the group has no template."""
        g = self.group(class_id)
        filled = [b for b in range(self.num_bins) if bool(self.valid[g, b].any())]
        if aspect_matching == "all" or not filled:
            return filled
        if aspect_matching != "nearest":
            raise ValueError(f"aspect_matching must be 'nearest' or 'all', got {aspect_matching!r}")
        d = (torch.log(self.aspect_centres[filled]) - math.log(aspect)).abs()
        return [filled[int(d.argmin())]]

    def warped(self, group: int, bin: int, index: torch.Tensor | int, height: int, width: int) -> torch.Tensor:
        """Templates ``index`` of (group, bin), clamped to [0, 1] and warped bilinearly to ``(height, width)``."""
        t = self.templates[group, bin, index].clamp(0.0, 1.0)
        single = t.ndim == 2
        t = t.reshape(-1, 1, *t.shape[-2:])
        w = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        return w[0] if single else w

    def match(self, q_box: torch.Tensor, class_id: int, aspect: float,
              aspect_matching: Literal["nearest", "all"] = "nearest", chunk: int = 64
              ) -> tuple[torch.Tensor, tuple[int, int], float] | None:
        """Eq. 5: the warped template ``t*`` maximising ``sum(Q (.) t) / (||Q|| ||t||)``.

        ``q_box`` (h, w) is ``Q_{B_k}(l_k)``. Scoring runs without gradient, in chunks (the
        argmax is not differentiable: Eq. 5-6 "can be seen as a special case of
        max-pooling"); the winner is warped again with gradient to the parameter. Ties go
        to the first template. Returns ``(t*, (bin, index), ncc)``, or None when there is
        no template to match.
        """
        h, w = q_box.shape
        g = self.group(class_id)
        bins = self.candidate_bins(aspect, class_id, aspect_matching)
        if not bins or h == 0 or w == 0:
            return None
        q = q_box.detach()
        qn = q.norm()
        best, best_at = -math.inf, None
        with torch.no_grad():
            for b in bins:
                idx = self.valid[g, b].nonzero().flatten()
                for part in idx.split(chunk):
                    t = self.warped(g, b, part, h, w)
                    ncc = (t * q).flatten(1).sum(1) / (t.flatten(1).norm(dim=1) * qn).clamp_min(1e-12)
                    j = int(ncc.argmax())
                    if float(ncc[j]) > best:
                        best, best_at = float(ncc[j]), (b, int(part[j]))
        b, k = best_at
        return self.warped(g, b, k, h, w), (b, k), best

    @classmethod
    def from_masks(cls, masks: Iterable[np.ndarray], classes: Iterable[int] | None = None, *,
                   num_classes: int | None = None, per_class: bool = False,
                   templates_per_bin: int = TEMPLATES_PER_BIN, size: int = TEMPLATE_SIZE,
                   num_bins: int = ASPECT_BINS, seed: int = 0) -> "ShapeTemplates":
        """Initialise by k-means of training-set instance masks at ``num_bins`` aspect ratios.

        ``masks``: 2-D boolean arrays, one per instance (whole-image masks or crops; each is
        cropped to its tight box; empty masks are skipped). ``classes``: their class ids,
        needed with ``per_class`` (then ``num_classes`` sets the group count).
        """
        from sklearn.cluster import KMeans

        crops, aspects, cls_ids = [], [], []
        class_list = None if classes is None else list(classes)
        for i, m in enumerate(masks):
            m = np.asarray(m, dtype=bool)
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            if rows.size == 0:
                continue
            crop = m[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
            t = torch.from_numpy(crop.astype(np.float32))[None, None]
            crops.append(F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                                       antialias=True)[0, 0].clamp(0, 1).reshape(-1).numpy())
            aspects.append(crop.shape[1] / crop.shape[0])
            cls_ids.append(0 if class_list is None else int(class_list[i]))
        if not crops:
            raise ValueError("no non-empty mask to build shape templates from")
        if per_class:
            if class_list is None or num_classes is None:
                raise ValueError("per_class templates need the masks' classes and num_classes")
            n_groups = int(num_classes)
        else:
            n_groups = 1
        x = np.stack(crops)
        log_a = np.log(np.asarray(aspects))
        centres = np.quantile(log_a, (np.arange(num_bins) + 0.5) / num_bins)
        bin_of = np.abs(log_a[:, None] - centres[None]).argmin(1)
        group_of = np.asarray(cls_ids) if per_class else np.zeros(len(x), dtype=np.int64)
        templates = torch.zeros(n_groups, num_bins, templates_per_bin, size, size)
        valid = torch.zeros(n_groups, num_bins, templates_per_bin, dtype=torch.bool)
        for g in range(n_groups):
            for b in range(num_bins):
                xs = np.unique(x[(group_of == g) & (bin_of == b)], axis=0)
                if len(xs) == 0:
                    continue
                if len(xs) <= templates_per_bin:
                    cent = xs  # fewer distinct masks than templates: keep them all
                else:
                    km = KMeans(n_clusters=templates_per_bin, n_init=1, random_state=seed).fit(xs)
                    cent = km.cluster_centers_
                k = len(cent)
                templates[g, b, :k] = torch.from_numpy(np.clip(cent, 0, 1).astype(np.float32)).view(k, size, size)
                valid[g, b, :k] = True
        return cls(templates, valid, torch.from_numpy(np.exp(centres)), per_class=per_class)


def instance_masks(samples: Iterable[Any]) -> tuple[list[np.ndarray], list[int]]:
    """Every instance mask (tight crop, bool) and class of some :class:`~instseg_lib.data.Sample` s,
    for :meth:`ShapeTemplates.from_masks`. Samples without masks are skipped."""
    masks, classes = [], []
    for s in samples:
        if not s.has_masks or not s.has_instances:
            continue
        for i, c in enumerate(s.instance_classes, start=1):
            m = s.instances == i
            rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
            if rows.size:
                masks.append(m[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1])
                classes.append(int(c))
    return masks, classes


# -------------------------------------------------------------------------------- unaries


class InstanceUnaries(nn.Module):
    """Eq. 2's unary ``U`` of the dynamic instance CRF, with learnable ``w1..w3`` and templates.

    ``terms``: any of ``"box"``, ``"global"``, ``"shape"`` (Table 1 ablates Box, Box+Global,
    Box+Global+Shape); one of Box or Global is needed to label background. ``templates``:
    a :class:`ShapeTemplates` (required with ``"shape"``). ``background_detection``: add
    §4.3's full-image background detection to the Box term (None: exactly when Box is used
    without Global), scored ``background_score``. ``score_transform``: ``s_k`` of Eq. 3
    (module docstring). ``aspect_matching``: Shape term's bin search (:class:`ShapeTemplates`).

    ``forward(q, detections)`` takes ``Q`` (1, C, H, W), the softmax output of the semantic
    subnetwork, and D detections (label ``k`` = ``detections[k-1]``) and returns the
    energies ``U`` (1, D+1, H, W), differentiable w.r.t. ``Q``, ``w`` and the templates.
    Zero detections give (1, 1, H, W): background only.
    """

    def __init__(self, terms: Iterable[Term] = TERMS, templates: ShapeTemplates | None = None, *,
                 background_detection: bool | None = None, background_score: float = BACKGROUND_SCORE,
                 score_transform: ScoreTransform = "raw", eps: float = UNARY_EPS,
                 aspect_matching: Literal["nearest", "all"] = "nearest", weight_init: float = 1.0) -> None:
        super().__init__()
        terms = tuple(dict.fromkeys(terms))
        unknown = [t for t in terms if t not in TERMS]
        if unknown or not terms:
            raise ValueError(f"terms must be a non-empty subset of {TERMS}, got {terms!r}")
        if "box" not in terms and "global" not in terms:
            raise ValueError("the Shape term alone cannot label background (it is 0 for label 0); "
                             "use it with 'box' or 'global' (Table 1: Box, Box+Global, Box+Global+Shape)")
        if "shape" in terms and templates is None:
            raise ValueError("the Shape term needs templates (ShapeTemplates.from_masks)")
        if background_detection is None:
            background_detection = "global" not in terms
        if background_detection and "box" not in terms:
            raise ValueError("the background detection belongs to the Box term; add 'box' to terms")
        if eps <= 0 or not math.isfinite(eps):
            raise ValueError(f"eps must be positive (it keeps psi_Box's zeros finite), got {eps!r}")
        transform_scores(torch.zeros(1), score_transform)  # validates the name
        self.terms = terms
        self.templates = templates if "shape" in terms else None
        self.background_detection = bool(background_detection)
        self.background_score = float(background_score)
        self.score_transform = score_transform
        self.eps = float(eps)
        self.aspect_matching = aspect_matching
        self.raw_weights = nn.Parameter(torch.full((3,), _inverse_softplus(weight_init)))

    @property
    def weights(self) -> torch.Tensor:
        """``(w1, w2, w3)`` = softplus of the raw parameters (non-negative, §3.2)."""
        return F.softplus(self.raw_weights)

    def box_scores(self, detections: Sequence[Detection], device: torch.device | None = None) -> torch.Tensor:
        """``(D,)`` the ``s_k`` the Box term uses."""
        s = torch.tensor([d.score for d in detections], dtype=torch.float32, device=device)
        return transform_scores(s, self.score_transform)

    def potentials(self, q: torch.Tensor, detections: Sequence[Detection]) -> dict[str, torch.Tensor]:
        """Each active term's ``psi`` as ``(D+1, H, W)`` (label 0 first), unweighted."""
        _check_q(q, detections)
        q0 = q[0]
        h, w = q0.shape[-2:]
        cls = label_classes(detections).to(q.device)
        q_det = q0[cls[1:]]  # (D, H, W): Q_i(l_k)
        out: dict[str, torch.Tensor] = {}
        if "box" in self.terms:
            inside = box_masks(detections, h, w, q.device).to(q.dtype)
            s = self.box_scores(detections, q.device).to(q.dtype)
            fg = q_det * s[:, None, None] * inside
            bg = q0[0] * self.background_score if self.background_detection else torch.zeros_like(q0[0])
            out["box"] = torch.cat([bg[None], fg])
        if "global" in self.terms:
            out["global"] = torch.cat([q0[:1], q_det])
        if "shape" in self.terms:
            out["shape"] = torch.cat([torch.zeros_like(q0[:1]), self._shape(q0, detections)])
        return out

    def _shape(self, q0: torch.Tensor, detections: Sequence[Detection]) -> torch.Tensor:
        h, w = q0.shape[-2:]
        parts = []
        for d in detections:
            r0, r1, c0, c1 = box_pixel_range(d.box, h, w)
            q_box = q0[d.class_id, r0:r1, c0:c1]
            m = self.templates.match(q_box, d.class_id, d.aspect, self.aspect_matching)
            if m is None:  # no pixel in the box, or no template for the class
                parts.append(torch.zeros_like(q0[0]))
                continue
            # Eq. 6, zero outside the box (the release's "ROI unpooling")
            parts.append(F.pad(q_box * m[0].to(q0.dtype), (c0, w - c1, r0, h - r1)))
        return torch.stack(parts) if parts else q0.new_zeros(0, h, w)

    def forward(self, q: torch.Tensor, detections: Sequence[Detection]) -> torch.Tensor:
        psi = self.potentials(q, detections)
        w = self.weights.to(q.dtype)
        total = sum(w[TERMS.index(name)] * p for name, p in psi.items())
        return -torch.log(total + self.eps)[None]


# --------------------------------------------------------------------- instances, scores


def instance_scores(labels: torch.Tensor, detections: Sequence[Detection], q: torch.Tensor | None = None,
                    ranking: Ranking = "mean_q", score_transform: ScoreTransform = "raw") -> torch.Tensor:
    """``(D,)`` AP^r ranking score of each instance ``k`` of a label map ``labels`` (H, W).

    ``"mean_q"``: the mean of ``Q_i(l_k)`` over the instance's pixels (the release's
    rescoring; 0 for an empty instance; needs ``q`` (1, C, H, W)); ``"detection"``: the
    detection score, with ``score_transform``.
    """
    if ranking == "detection":
        s = torch.tensor([d.score for d in detections], dtype=torch.float32)
        return transform_scores(s, score_transform)
    if ranking != "mean_q":
        raise ValueError(f"ranking must be 'mean_q' or 'detection', got {ranking!r}")
    if q is None:
        raise ValueError("ranking='mean_q' needs the semantic probabilities q")
    out = torch.zeros(len(detections))
    for k, d in enumerate(detections, start=1):
        m = labels == k
        if m.any():
            out[k - 1] = float(q[0, d.class_id][m].float().mean())
    return out


def instances_from_labels(labels: torch.Tensor, detections: Sequence[Detection], q: torch.Tensor | None = None,
                          ranking: Ranking = "mean_q", score_transform: ScoreTransform = "raw") -> Instances:
    """Instance label map ``(H, W)`` -> :class:`~instseg_lib.grouping.Instances` for AP^r and Matching IoU.

    Instance ``k`` is the pixels labelled ``k`` with class ``l_k``; empty instances are
    dropped; the rest are sorted by descending score (:func:`instance_scores`).
    """
    labels = labels.reshape(labels.shape[-2:])
    scores = instance_scores(labels, detections, q, ranking, score_transform)
    ks = [k for k in range(1, len(detections) + 1) if bool((labels == k).any())]
    if not ks:
        h, w = labels.shape
        return Instances(torch.zeros(0, h, w, dtype=torch.bool), torch.zeros(0, dtype=torch.long),
                         torch.zeros(0))
    ks.sort(key=lambda k: -float(scores[k - 1]))
    masks = torch.stack([labels == k for k in ks]).cpu()
    classes = torch.tensor([detections[k - 1].class_id for k in ks], dtype=torch.long)
    return Instances(masks, classes, scores[[k - 1 for k in ks]])


@dataclass
class InstanceCRFOutput:
    """``unary`` (1, D+1, H, W) energies, ``marginals`` (1, D+1, H, W), ``labels`` (H, W) argmax,
    ``instances`` (non-empty, ranked), ``detections`` (label ``k`` = ``detections[k-1]``, with
    the scores the unaries used)."""

    unary: torch.Tensor
    marginals: torch.Tensor
    labels: torch.Tensor
    instances: Instances
    detections: list[Detection] = field(default_factory=list)


def background_from_stuff(q: torch.Tensor, stuff_ids: Sequence[int]) -> torch.Tensor:
    """``Q`` with channel 0 replaced by the summed probability of the ``stuff_ids`` classes.

    Label 0 of the instance CRF takes ``Q_i(background)`` (Eq. 4). A label set without a
    background class, such as Cityscapes' 19 training classes (§4.7), has none: the
    background of an instance map is everything that is not an instance class, so its
    probability is the sum over the stuff classes (ours; the paper does not say how its
    PSPNet's 19 classes feed label 0). Only channel 0 and the detections' classes are read
    by the unaries and the ranking, so no class id changes; the sum keeps the gradient.
    """
    ids = sorted({int(c) for c in stuff_ids})
    if not ids or min(ids) < 0 or max(ids) >= q.shape[1]:
        raise ValueError(f"stuff_ids must be channels of Q (0..{q.shape[1] - 1}), got {list(stuff_ids)}")
    bg = q[:, ids].sum(1, keepdim=True)
    return torch.cat([bg, q[:, 1:]], 1)


def dynamic_instance_crf(q: torch.Tensor, detections: Sequence[Detection], unaries: InstanceUnaries, *,
                         image: torch.Tensor | None = None,
                         crf: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                         ranking: Ranking = "mean_q") -> InstanceCRFOutput:
    """The instance subnetwork of §3.2-3.3 for one image: unaries, inference, instances.

    ``crf(unary, image)`` is the mean-field layer (:class:`instseg_lib.models.crf.DenseCRF`
    with ``unary_kind="energy"`` and Potts compatibility, any number of labels; the paper's
    pairwise term, §3.2.4) returning marginals; ``image`` (1, 3, H, W). Without ``crf`` the
    marginals are the unary-only ``softmax(-U)`` (no pairwise term). Zero detections give
    one label and an all-background map.
    """
    unary = unaries(q, detections)
    if crf is None:
        marginals = torch.softmax(-unary, dim=1)
    else:
        if image is None:
            raise ValueError("the dense CRF's pairwise term needs the image")
        marginals = crf(unary, image)
    labels = marginals[0].argmax(0)
    inst = instances_from_labels(labels.detach(), detections, q.detach(), ranking, unaries.score_transform)
    return InstanceCRFOutput(unary, marginals, labels, inst, list(detections))
