"""Pixels -> instances by seed sampling and mask growing (Fathi et al. 2017, §3.3-3.4).

Inference (§3.3), given per-pixel embeddings ``e_p`` and mask-class probabilities
``C^τ_pc`` (one softmax classifier per threshold τ, §3.4):

1. seediness ``S_p = max_{τ ∈ T} max_{c = 1..C} C^τ_pc`` (the max skips background), with
   ``(τ_p, c_p) = argmax_{τ, c >= 1} C^τ_pc`` and the confidence ``s_p = C^{τ_p}_{p, c_p}``
   (:func:`seediness_from_probs`);
2. seeds, greedily: ``p_t = argmax_{p ∉ p_{1:t-1}} log S_p + α log D(p, p_{1:t-1})`` with
   ``D(p, p_{1:t-1}) = min_q ||e_p - e_q||²`` over the seeds chosen so far, "similar to
   the heuristic used by Kmeans++ initialization"; the first seed is ``argmax S``
   (:func:`select_seeds`);
3. each seed grows the mask ``m(p, τ_p) = {q : σ(p, q) >= τ_p}``, i.e.
   ``||e_p - e_q||² <= ln(2/τ_p - 1)``, for all seeds at once with one matrix product
   ``A² + B² - 2AB`` (:func:`grow_masks`);
4. each mask gets class ``c_p`` and score ``s_p``.

Training targets of the seediness head (§3.4), :func:`seediness_targets`: a mask grown from
a sampled pixel at threshold τ is a "good" proposal when its best IoU with a ground-truth
instance exceeds a fixed threshold; the pixel then gets that instance's class, otherwise
background. Targets come from the current embeddings without gradient and are recomputed
at every step (the embeddings change as they train).

Choices the paper leaves open (ours):

- **Candidate grid.** Seeds are chosen among pixels on a ``stride``-4 grid (offset
  ``stride // 2``): neighbouring pixels have near-identical embeddings and seediness, so
  the grid loses little and makes step 2 16x cheaper. Masks are grown at full resolution.
- **Ties and exhaustion.** ``argmax`` takes the first maximum in raster order. Chosen
  seeds are masked explicitly (with α = 0, or with rounding in ``D``, nothing else would
  stop a seed being picked twice). Selection stops early when no candidate has a finite
  score left (all remaining have ``S = 0`` or, for α > 0, ``D = 0``), so it may return
  fewer than ``num_seeds`` seeds.
- **α = 0** uses ``log S`` alone (no ``0 · log 0`` = NaN for pixels with ``D = 0``).
- **Order.** Instances are returned in selection order, not sorted by score. Greedy
  selection is prefix-stable (step t depends only on the seeds before it), so the first
  ``n`` instances of one ``N``-seed run are exactly the ``n``-seed result
  (:func:`first_n`): Table 3's sweep over the number of seeds needs one run per image.
- **No mask NMS** by default: the paper describes none (diversity comes from step 2).
  ``mask_nms_iou`` switches on greedy region NMS (:func:`~.hough.region_nms`), which
  reorders by score and so breaks the prefix property.
- **Class-agnostic mode** (proposal generator, §4.1 / Table 3): the seediness of a pixel
  is its best foreground probability summed over classes, ``max_τ (1 - C^τ_{p,0})``, with
  ``τ_p`` its argmax; the label reported is still ``argmax_c C^{τ_p}_{pc}``.
- **Seediness targets** (:func:`seediness_targets`): IoU threshold 0.5 (strictly greater;
  the paper: "some fixed IoU threshold"); masks and ground truth are compared on non-void
  pixels only (void pixels are in neither); a background pixel is a sample like any other
  (its mask usually matches no instance, so it learns label 0, which is what makes
  ``S_p`` low on background).
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Sequence

import torch

from ..models.embedding import FATHI_TAUS, check_taus, distance_threshold, pairwise_sq_distances
from .hough import Instances, _empty, region_nms

Mode = Literal["class_aware", "class_agnostic"]
MODES = ("class_aware", "class_agnostic")

#: IoU above which a grown mask is a "good" proposal (§3.4 "some fixed IoU threshold"; ours).
SEED_IOU_THRESHOLD = 0.5
#: α of the seed sampling; Table 2's best value.
DEFAULT_ALPHA = 0.3


class Seediness(NamedTuple):
    """Per pixel (H, W): ``score`` S_p (= s_p), ``tau_index`` index of τ_p, ``classes`` c_p."""

    score: torch.Tensor
    tau_index: torch.Tensor
    classes: torch.Tensor


class SeedSelection(NamedTuple):
    """Chosen seeds in selection order: ``index`` flat pixel index (y * W + x), ``tau``
    their τ_p, ``tau_index``, ``classes`` c_p and ``scores`` s_p, all (N,)."""

    index: torch.Tensor
    tau: torch.Tensor
    tau_index: torch.Tensor
    classes: torch.Tensor
    scores: torch.Tensor

    def yx(self, width: int) -> torch.Tensor:
        """(N, 2) pixel coordinates ``(y, x)`` of the seeds."""
        return torch.stack([self.index // width, self.index % width], 1)


class SeedTargets(NamedTuple):
    """Targets at M sampled pixels for T thresholds: ``labels`` (T, M) long (0 = bad mask),
    ``iou`` (T, M) best IoU of the grown mask, ``match`` (T, M) its instance id (0: none)."""

    labels: torch.Tensor
    iou: torch.Tensor
    match: torch.Tensor


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")


def seediness_from_probs(probs: torch.Tensor, mode: Mode = "class_aware") -> Seediness:
    """§3.4: ``S_p``, ``τ_p`` and ``c_p`` from ``C^τ_pc`` of shape (T, C + 1, *pixels).

    ``class_aware`` (the paper): ``S_p = max_τ max_{c>=1} C^τ_pc``, ``(τ_p, c_p)`` its
    argmax (τ-major, first maximum on ties). ``class_agnostic``: ``S_p = max_τ
    Σ_{c>=1} C^τ_pc``, ``c_p = argmax_{c>=1} C^{τ_p}_pc``. Class ids count background as 0.
    ``*pixels`` is any trailing shape, (H, W) or the (P,) pixels of a candidate grid.
    """
    _check_mode(mode)
    if probs.dim() < 3 or probs.shape[1] < 2:
        raise ValueError(f"probs must be (T, C + 1, *pixels) with C >= 1; got {tuple(probs.shape)}")
    spatial = probs.shape[2:]
    fg = probs[:, 1:].float().reshape(probs.shape[0], probs.shape[1] - 1, -1)
    t, c, p = fg.shape
    if mode == "class_aware":
        score, idx = fg.reshape(t * c, p).max(0)
        tau, cls = idx // c, idx % c + 1
    else:
        score, tau = fg.sum(1).max(0)
        score = score.clamp(max=1.0)  # a sum of probabilities may round above 1
        cls = fg.gather(0, tau[None, None].expand(1, c, p))[0].argmax(0) + 1
    return Seediness(score.view(spatial), tau.view(spatial), cls.view(spatial))


def candidate_grid(h: int, w: int, stride: int = 4, device: torch.device | str | None = None) -> torch.Tensor:
    """Flat indices (y * w + x) of the seed candidates: every ``stride``-th pixel, offset
    ``stride // 2`` (clipped to the image) so a small image still has a centred candidate."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1; got {stride}")
    if h <= 0 or w <= 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    ys = torch.arange(min(stride // 2, h - 1), h, stride, device=device)
    xs = torch.arange(min(stride // 2, w - 1), w, stride, device=device)
    return (ys[:, None] * w + xs[None, :]).reshape(-1)


@torch.no_grad()
def select_seeds(embedding: torch.Tensor, seediness: torch.Tensor, num_seeds: int,
                 alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """§3.3 greedy seed sampling among P candidates; returns their indices in selection order.

    ``embedding`` (P, d), ``seediness`` (P,) in [0, 1]. Step t maximises
    ``log S_p + α log min_{q chosen} ||e_p - e_q||²`` over the candidates not yet chosen
    (step 1: ``log S_p``). ``D`` is kept as a running minimum, one ``A² + B² - 2AB``
    row per step, clamped at 0. Stops early when no finite score remains (see the module
    docstring); the result is prefix-stable in ``num_seeds``.
    """
    if alpha < 0 or alpha != alpha:
        raise ValueError(f"alpha must be >= 0; got {alpha}")
    if num_seeds < 0:
        raise ValueError(f"num_seeds must be >= 0; got {num_seeds}")
    p = seediness.numel()
    if embedding.shape[0] != p:
        raise ValueError(f"embedding has {embedding.shape[0]} rows for {p} seediness values")
    emb = embedding.float()
    log_s = seediness.float().log()  # -inf where S = 0: never a seed
    sq = (emb * emb).sum(1)
    chosen = torch.zeros(p, dtype=torch.bool, device=emb.device)
    log_d: torch.Tensor | None = None
    order: list[int] = []
    for _ in range(min(num_seeds, p)):
        score = log_s if log_d is None else log_s + alpha * log_d
        score = score.masked_fill(chosen, float("-inf"))
        best, i = score.max(0)
        if not torch.isfinite(best):
            break
        i = int(i)
        order.append(i)
        chosen[i] = True
        if alpha > 0:  # α = 0: D never enters the score
            d = (sq + sq[i] - 2.0 * (emb @ emb[i])).clamp(min=0)
            log_d = d.log() if log_d is None else torch.minimum(log_d, d.log())
    return torch.tensor(order, dtype=torch.long, device=emb.device)


@torch.no_grad()
def grow_masks(embedding: torch.Tensor, seed_index: torch.Tensor, sq_thresholds: torch.Tensor,
               chunk: int = 256) -> torch.Tensor:
    """§3.3: masks ``{q : ||e_p - e_q||² <= thr_p}`` of seeds p, (N, H, W) bool.

    ``embedding`` (d, H, W); ``seed_index`` (N,) flat pixel indices; ``sq_thresholds`` (N,)
    each seed's own squared-distance threshold (:func:`~instseg_lib.models.embedding.
    distance_threshold` of its τ_p). Distances by ``A² + B² - 2AB``, one matrix product per
    ``chunk`` seeds (bounds memory at ``chunk x H x W``). A seed always belongs to its own
    mask (σ(p, p) = 1), also when rounding would put it a hair outside.
    """
    d, h, w = embedding.shape
    n = seed_index.numel()
    out = torch.zeros(n, h * w, dtype=torch.bool, device=embedding.device)
    if n == 0 or h * w == 0:
        return out.view(n, h, w)
    a = embedding.reshape(d, h * w).float()
    sq_a = _sq_norms(a)
    thr = sq_thresholds.to(a.device, torch.float32)
    for s in range(0, n, chunk):
        b = a[:, seed_index[s:s + chunk]].T  # (n, d)
        # ||a||² - 2 b·a in one fused addmm, compared with thr - ||b||²: no extra (n, HW) temporaries.
        # No clamp at 0 needed: thresholds are > 0, so a tiny negative distance is "inside" anyway.
        part = torch.addmm(sq_a[None].expand(b.shape[0], -1), b, a, alpha=-2.0)
        out[s:s + chunk] = part <= (thr[s:s + chunk] - (b * b).sum(1))[:, None]
    out[torch.arange(n, device=out.device), seed_index] = True
    return out.view(n, h, w)


def _sq_norms(a: torch.Tensor) -> torch.Tensor:
    """Column norms ``||a[:, j]||²`` of a (d, P) matrix.

    A row-by-row ``addcmul`` loop: on CPU ``(a * a).sum(0)`` reduces over the strided outer
    dimension ~15x slower (measured, 64 x 153,600), and d is at most 256 rows.
    """
    out = a[0] * a[0]
    for row in a[1:]:
        out.addcmul_(row, row)
    return out


def _check_inputs(embedding: torch.Tensor, probs: torch.Tensor, taus: Sequence[float]) -> tuple[float, ...]:
    taus = check_taus(taus)
    if embedding.dim() != 3 or probs.dim() != 4:
        raise ValueError(f"embedding must be (d, H, W) and probs (T, C + 1, H, W); got "
                         f"{tuple(embedding.shape)} and {tuple(probs.shape)}")
    if probs.shape[0] != len(taus):
        raise ValueError(f"probs has {probs.shape[0]} threshold classifiers for {len(taus)} taus {taus}")
    if embedding.shape[-2:] != probs.shape[-2:]:
        raise ValueError(f"embedding {tuple(embedding.shape[-2:])} and probs {tuple(probs.shape[-2:])} sizes differ")
    return taus


@torch.no_grad()
def sample_seeds(
    embedding: torch.Tensor,
    probs: torch.Tensor,
    taus: Sequence[float] = FATHI_TAUS,
    num_seeds: int = 100,
    alpha: float = DEFAULT_ALPHA,
    *,
    stride: int = 4,
    mode: Mode = "class_aware",
    min_score: float = 0.0,
) -> SeedSelection:
    """§3.3-3.4 steps 1-2 for one image: seediness, then greedy diverse seed sampling.

    ``embedding`` (d, H, W); ``probs`` (T, C + 1, H, W) softmax probabilities, one
    classifier per τ of ``taus``. Candidates lie on a ``stride`` grid; those with
    ``S_p < min_score`` are left out (default: none). Returns the seeds in selection order.
    """
    taus = _check_inputs(embedding, probs, taus)
    d, h, w = embedding.shape
    cand = candidate_grid(h, w, stride, embedding.device)
    # Seediness (and the NaN check) only where a seed may fall: 16x less work at stride 4.
    cprobs = probs.reshape(*probs.shape[:2], -1)[:, :, cand]
    if not bool(torch.isfinite(cprobs).all()):
        raise ValueError("probs contain NaN or inf at seed candidates")
    seed_map = seediness_from_probs(cprobs, mode)
    keep = seed_map.score >= min_score if min_score > 0 else slice(None)
    cand, s = cand[keep], seed_map.score[keep]
    emb = embedding.reshape(d, -1)[:, cand].T.contiguous()
    order = select_seeds(emb, s, num_seeds, alpha)
    pick = cand[order]
    tau_index = seed_map.tau_index[keep][order]
    tau_values = torch.tensor(taus, dtype=torch.float32, device=embedding.device)[tau_index]
    return SeedSelection(pick, tau_values, tau_index, seed_map.classes[keep][order], s[order])


@torch.no_grad()
def instances_from_seeds(embedding: torch.Tensor, seeds: SeedSelection, *,
                         mask_nms_iou: float | None = None, classwise_nms: bool = True) -> Instances:
    """§3.3 steps 3-4: grow each seed's mask at its own τ_p; attach ``c_p`` and ``s_p``.

    Selection order is kept unless ``mask_nms_iou`` switches on region NMS (then the
    survivors come in descending score order).
    """
    d, h, w = embedding.shape
    if seeds.index.numel() == 0:
        return _empty(h, w, embedding.device)
    masks = grow_masks(embedding, seeds.index, distance_threshold(seeds.tau.cpu()).to(embedding.device))
    res = Instances(masks, seeds.classes.long(), seeds.scores.float())
    if mask_nms_iou is None:
        return res
    keep = region_nms(res.masks, res.scores, res.classes, mask_nms_iou, classwise=classwise_nms)
    return Instances(res.masks[keep], res.classes[keep], res.scores[keep])


@torch.no_grad()
def seed_group(
    embedding: torch.Tensor,
    probs: torch.Tensor,
    taus: Sequence[float] = FATHI_TAUS,
    num_seeds: int = 100,
    alpha: float = DEFAULT_ALPHA,
    *,
    stride: int = 4,
    mode: Mode = "class_aware",
    min_score: float = 0.0,
    mask_nms_iou: float | None = None,
) -> Instances:
    """Group one image's pixels into instances by seeds, §3.3-3.4 steps 1-4.

    ``embedding`` (d, H, W) and ``probs`` (T, C + 1, H, W) at the same size (the net's
    upsampled outputs; ``probs`` = :meth:`~instseg_lib.models.FathiOutput.class_probs`).

    - ``num_seeds``: seeds to sample (the paper: 100; Table 3 sweeps 10-1000);
    - ``alpha``: diversity weight α (Table 2; 0.3 best);
    - ``stride``: candidate grid of the seed search;
    - ``mode``: ``"class_aware"`` (§3.4) or ``"class_agnostic"`` (proposals, Table 3);
    - ``min_score``: candidates with a lower seediness are never seeds;
    - ``mask_nms_iou``: ``None`` (default, the paper) or the IoU of a class-wise region NMS.

    Returns :class:`~.hough.Instances` in selection order (so :func:`first_n` of a large
    run equals a smaller run); an image without pixels gives zero instances.
    """
    _check_mode(mode)
    d, h, w = embedding.shape
    if h * w == 0:
        _check_inputs(embedding, probs, taus)
        return _empty(h, w, embedding.device)
    seeds = sample_seeds(embedding, probs, taus, num_seeds, alpha, stride=stride, mode=mode, min_score=min_score)
    return instances_from_seeds(embedding, seeds, mask_nms_iou=mask_nms_iou, classwise_nms=mode == "class_aware")


def first_n(instances: Instances, n: int) -> Instances:
    """The first ``n`` instances: for a selection-ordered result (no mask NMS) this is exactly
    the result of sampling ``n`` seeds, by prefix stability of the greedy selection."""
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    return Instances(instances.masks[:n], instances.classes[:n], instances.scores[:n])


# --------------------------------------------------------------------------- training targets
@torch.no_grad()
def seediness_targets(
    embedding: torch.Tensor,
    points: torch.Tensor,
    instances: torch.Tensor,
    instance_classes: torch.Tensor,
    taus: Sequence[float] = FATHI_TAUS,
    valid: torch.Tensor | None = None,
    iou_threshold: float = SEED_IOU_THRESHOLD,
    chunk: int = 64,
) -> SeedTargets:
    """§3.4 targets of the mask classifiers at sampled pixels ``points`` of one image.

    ``embedding`` (d, H, W), used detached; ``points`` (M,) flat indices of valid pixels;
    ``instances`` (H, W) ids (0 background, 1..N); ``instance_classes`` (N,) class of id
    ``i`` at ``i - 1``; ``valid`` (H, W) bool, False on void pixels. For each point p and
    each τ the mask ``m(p, τ)`` (valid pixels with ``σ(p, q) >= τ``) is compared with
    every ground-truth instance; if the best IoU exceeds ``iou_threshold`` the target is
    that instance's class, otherwise background (0).
    """
    taus = check_taus(taus)
    d, h, w = embedding.shape
    if not 0.0 <= iou_threshold < 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1); got {iou_threshold}")
    classes = torch.as_tensor(instance_classes, dtype=torch.long, device=embedding.device).reshape(-1)
    n = classes.numel()
    ids = instances.reshape(-1).long().to(embedding.device)
    if ids.numel() and int(ids.max()) > n:
        raise ValueError(f"instance id {int(ids.max())} has no class (only {n} instance_classes)")
    a = embedding.detach().reshape(d, -1).float()
    keep = (torch.ones_like(ids, dtype=torch.bool) if valid is None
            else valid.reshape(-1).to(embedding.device).bool())
    vid = keep.nonzero(as_tuple=True)[0]
    av, idv = a[:, vid].T.contiguous(), ids[vid]  # valid pixels only
    gt = torch.zeros(vid.numel(), max(n, 1), device=a.device)
    fg = idv > 0
    gt[fg.nonzero(as_tuple=True)[0], idv[fg] - 1] = 1.0
    gt_area = gt.sum(0)
    thr = distance_threshold(taus).to(a.device)
    m, t = points.numel(), len(taus)
    best = torch.zeros(t, m, device=a.device)
    match = torch.zeros(t, m, dtype=torch.long, device=a.device)
    pts = a[:, points.to(a.device)].T
    for s in range(0, m, chunk):
        d2 = pairwise_sq_distances(pts[s:s + chunk], av)  # (m', V)
        for j in range(t):
            grown = (d2 <= thr[j]).float()
            inter = grown @ gt
            union = grown.sum(1, keepdim=True) + gt_area[None] - inter
            iou = inter / union.clamp(min=1.0)
            b, arg = iou.max(1)
            best[j, s:s + chunk], match[j, s:s + chunk] = b, arg + 1
    good = (best > iou_threshold) & (n > 0)
    match = torch.where(good, match, torch.zeros_like(match))
    labels = torch.where(good, classes[(match - 1).clamp(min=0)] if n else match, torch.zeros_like(match))
    return SeedTargets(labels, best, match)
