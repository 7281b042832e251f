"""Training losses of the book.

Wu, Shen & van den Hengel 2016:

- :func:`bootstrapped_cross_entropy`: online bootstrapping of hard pixels, §2.2 Eq. 1.
- :func:`weighted_smooth_l1`: the localization net's smoothed-l1 loss [Fast R-CNN] with
  per-instance size weights and IoU-based bootstrapping (§2.1, §2.2).

Fathi et al. 2017 (the choices the paper leaves open are listed in each docstring):

- :func:`embedding_loss`: pairwise similarity cross-entropy over K pixels per instance, §3.2;
- :func:`seediness_loss`: mask-classification / seediness loss at sampled seeds, §3.4;
- :func:`fathi_loss` with :func:`fathi_lambda`: ``L = L_e + λ L_cls``, §3.5.

Liang et al. 2015 (PFN):

- :func:`pfn_location_loss`: smooth-l1 on foreground pixels divided by their count (Eq. 2,
  one term of Eq. 4); :func:`pfn_number_loss`: the Euclidean loss of the instance numbers
  (Eq. 5's L_n); :func:`pfn_loss`: L = lambda L_o + L_n with deep supervision (Eq. 4, 5).

Arnab & Torr 2017:

- :func:`matched_loss`: cross-entropy of the instance CRF's output against the ground truth
  permuted to the prediction by maximum-IoU bipartite matching (§3.4, Eq. 7);
  :func:`matched_ground_truth` returns that matched map (Fig. 6c).

**K is per image (per crop).** §2.2 derives Eq. 1 "for simplicity" with one crop per
mini-batch and asks for "at least a reasonable number of pixels kept per mini-batch";
Table 7's "keep the 512 hardest pixels" therefore counts pixels of one crop. With
batches of several crops we keep K per crop, so the kept set does not shrink relative to
the crop as the batch grows and every crop contributes hard pixels. Pixels kept in all
crops of the batch are then averaged together, as Eq. 1 averages over the kept set.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F

from .grouping.seeds import SEED_IOU_THRESHOLD, seediness_targets
from .models.embedding import FATHI_TAUS, FathiOutput, log_dissimilarity, log_similarity, pairwise_sq_distances
from .models.fcrn import select_class_boxes

#: IoU above which a pixel's predicted box counts as "easy" for the localization net.
#: Wu et al. give no value; 0.7 is our choice (the stricter overlap of Table 6's mAP^r).
DEFAULT_BOX_IOU_THRESHOLD = 0.7


def hard_pixel_mask(
    hardness: torch.Tensor,
    candidates: torch.Tensor,
    easy: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """Per image: keep candidate pixels that are not ``easy``, plus the ``k`` hardest.

    ``hardness`` (B, H, W), larger = harder; ``candidates`` and ``easy`` bool (B, H, W).
    Raising the threshold until at least ``k`` pixels pass (§2.2) is the same as adding
    the ``k`` hardest candidates of each image to the below-threshold set.
    """
    b = hardness.shape[0]
    keep = candidates & ~easy
    if k > 0:
        flat = hardness.detach().reshape(b, -1).masked_fill(~candidates.reshape(b, -1), float("-inf"))
        kk = min(k, flat.shape[1])
        idx = flat.topk(kk, dim=1).indices
        top = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, idx, True)
        keep = keep | (top.reshape(candidates.shape) & candidates)
    return keep


def bootstrapped_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    k: int | None,
    threshold: float = 0.0,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Online bootstrapped cross-entropy, Wu et al. §2.2 Eq. 1.

    ``logits`` (B, C, H, W), ``target`` (B, H, W) int with ``ignore_index`` for void.
    A pixel is kept when its true-class probability ``p < threshold``; per image the
    threshold is raised until at least ``k`` pixels are kept, i.e. the ``k`` hardest
    (lowest true-class probability) labelled pixels of each crop are always kept. With
    the default ``threshold=0`` exactly the ``k`` hardest pixels per crop are kept
    (Table 7: "keep the 512 hardest pixels"). The loss is the mean ``-log p`` over the
    kept pixels of the batch. ``k=None`` or ``0`` gives plain cross-entropy over all
    labelled pixels. Dropped pixels get exactly zero gradient.
    """
    ce = F.cross_entropy(logits, target.long(), ignore_index=ignore_index, reduction="none")
    valid = target != ignore_index
    if not k:
        keep = valid
    else:
        # ce = -log p_true, so "p < t" is "ce > -log t"; t = 0 keeps none by threshold.
        easy = (ce.detach() <= -math.log(threshold)) if threshold > 0 else valid
        keep = hard_pixel_mask(ce, valid, easy, int(k))
    if not keep.any():
        return logits.sum() * 0.0  # keeps the graph; no labelled pixel in the batch
    return ce[keep].mean()


def box_iou_from_offsets(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise IoU of boxes given as ``(dy, dx, h, w)`` relative to the same pixel.

    ``pred`` and ``target`` (B, 4, H, W) in the same units; returns (B, H, W). The pixel
    position cancels, so any per-axis scaling of both leaves the IoU unchanged.
    """
    def corners(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dy, dx = t[:, 0], t[:, 1]
        h, w = t[:, 2].clamp(min=0), t[:, 3].clamp(min=0)
        return dy - h / 2, dx - w / 2, dy + h / 2, dx + w / 2

    py1, px1, py2, px2 = corners(pred)
    ty1, tx1, ty2, tx2 = corners(target)
    ih = (torch.minimum(py2, ty2) - torch.maximum(py1, ty1)).clamp(min=0)
    iw = (torch.minimum(px2, tx2) - torch.maximum(px1, tx1)).clamp(min=0)
    inter = ih * iw
    union = (py2 - py1) * (px2 - px1) + (ty2 - ty1) * (tx2 - tx1) - inter
    return inter / union.clamp(min=1e-12)


def instance_size_weights(target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-instance size weights from box targets: ``1 / (h * w)`` (§2.1).

    "To balance the contributions of instances in different sizes, we re-weight their
    pixels ... according to their heights and widths ... pixels in the same instance
    have the same loss weight" (§2.1). An instance covers about ``h * w`` pixels, so
    ``1 / (h w)`` gives every instance about the same total weight; all pixels of an
    instance share ``h, w`` targets and thus one weight. Normalised to mean 1 over the
    valid pixels of each image. ``target`` (B, 4, H, W), ``valid`` (B, H, W).
    """
    area = (target[:, 2] * target[:, 3]).clamp(min=1.0)
    w = torch.where(valid, 1.0 / area, torch.zeros_like(area))
    b = w.shape[0]
    n = valid.reshape(b, -1).sum(1).clamp(min=1)
    mean = w.reshape(b, -1).sum(1) / n
    return w / mean.clamp(min=1e-12).view(b, 1, 1)


def weighted_smooth_l1(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    valid: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    iou_threshold: float | None = None,
    min_kept: int = 0,
    beta: float = 1.0,
    normalize: bool = True,
) -> torch.Tensor:
    """Localization loss of §2.1: size-weighted smoothed-l1 with IoU bootstrapping (§2.2).

    Shapes: ``pred`` (B, 4*C_fg, H, W) class-wise boxes (or (B, 4, H, W)), ``target``
    (B, 4, H, W) with channels ``(dy, dx, h, w)`` in pixels (zero outside instances),
    ``weight`` (B, H, W) one weight per instance (``None``: :func:`instance_size_weights`),
    ``valid`` (B, H, W) bool, ``labels`` (B, H, W) semantic labels used to select each
    pixel's class channels (background 0, class ``c`` -> channels ``4(c-1):4c``).

    ``normalize`` divides y-type channels by the map height and x-type by its width, so
    the loss is in image-size units (matching :class:`~instseg_lib.models.FCRNLocalization`).

    Bootstrapping (§2.2): with ``iou_threshold`` set, pixels whose predicted box already
    has IoU >= ``iou_threshold`` with the true box are dropped, except that the
    ``min_kept`` lowest-IoU pixels of each image are always kept. The paper gives no
    threshold; :data:`DEFAULT_BOX_IOU_THRESHOLD` is ours. Returns the weighted mean
    ``sum(w * l) / sum(w)`` over kept pixels, ``l`` the smoothed-l1 summed over the 4
    channels.
    """
    if pred.shape[1] != 4:
        if labels is None:
            raise ValueError("class-wise box predictions need `labels` to select channels")
        pred = select_class_boxes(pred, labels)
    valid = valid.bool()
    if weight is None:
        weight = instance_size_weights(target, valid)
    if normalize:
        h, w = target.shape[-2:]
        scale = target.new_tensor([h, w, h, w]).view(1, 4, 1, 1)
        p, t = pred / scale, target / scale
    else:
        p, t = pred, target
    per_pixel = F.smooth_l1_loss(p, t.to(p.dtype), beta=beta, reduction="none").sum(1)
    if iou_threshold is None:
        keep = valid
    else:
        iou = box_iou_from_offsets(pred.detach().float(), target.float())
        keep = hard_pixel_mask(-iou, valid, iou >= iou_threshold, min_kept)
    wk = weight.to(per_pixel.dtype)[keep]
    if wk.numel() == 0 or float(wk.sum()) <= 0:
        return pred.sum() * 0.0
    return (wk * per_pixel[keep]).sum() / wk.sum()


# =========================================================================== Fathi et al. 2017
# Embedding loss (§3.2) and mask-classification / seediness loss (§3.4) of "Semantic instance
# segmentation via deep metric learning". The similarity σ and its logarithms live in
# instseg_lib.models.embedding; the seediness targets in instseg_lib.grouping.seeds.

#: Pixels sampled per instance for the seediness loss, §3.4 ("K = 10 random points per
#: object instance").
SEED_POINTS_PER_INSTANCE = 10
#: Pixels sampled per instance for the embedding loss. §3.2 names K but gives no value;
#: ours (the profiles pass their own ``pixels_per_instance``).
EMBEDDING_POINTS_PER_INSTANCE = 64
#: λ's final value in L = L_e + λ L_cls (§3.5: "a maximum value of 0.2").
FATHI_LAMBDA_MAX = 0.2


def sample_pixels_per_instance(
    groups: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Up to ``k`` random positions of each distinct value of ``groups`` (P,), without replacement.

    Returns indices into ``groups`` ordered by group value. A group with fewer than ``k``
    members contributes all of them once (no duplicates: a duplicated pixel would only add
    zero-loss pairs of a pixel with itself). Vectorised: random keys, a stable sort by
    group, then the rank within each group. ``generator`` must live on ``groups``' device.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    n = groups.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=groups.device)
    perm = torch.rand(n, generator=generator, device=groups.device).argsort()
    g, order = groups[perm].sort(stable=True)
    perm = perm[order]
    pos = torch.arange(n, device=groups.device)
    first = torch.ones(n, dtype=torch.bool, device=groups.device)
    first[1:] = g[1:] != g[:-1]
    start = torch.where(first, pos, torch.zeros_like(pos)).cummax(0).values
    return perm[(pos - start) < k]


def embedding_pair_weights(
    sizes: torch.Tensor, weighting: Literal["inverse_size", "uniform"] = "inverse_size",
    include_diagonal: bool = False,
) -> torch.Tensor:
    """(M, M) weights ``w_pq`` of the sampled pairs, summing to 1 (§3.2).

    ``sizes`` (M,): the pixel count of each sample's instance. ``"inverse_size"``:
    ``w_pq ∝ 1 / (n_p n_q)``, "inversely proportional to the size of the instances p and q
    belong to" (proportional to both ``1/n_p`` and ``1/n_q``). ``"uniform"``: ``w_pq ∝ 1``.
    The diagonal ``p = q`` gets weight 0 unless ``include_diagonal``. All zeros when no
    pair is left (a single sample without its diagonal).
    """
    inv = 1.0 / sizes.float().clamp(min=1)
    if weighting == "inverse_size":
        w = inv[:, None] * inv[None, :]
    elif weighting == "uniform":
        w = torch.ones(len(inv), len(inv), device=sizes.device)
    else:
        raise ValueError(f"unknown weighting {weighting!r}; use 'inverse_size' or 'uniform'")
    if not include_diagonal:
        w.fill_diagonal_(0.0)
    total = w.sum()
    return w / total if total > 0 else w


def embedding_pair_loss(
    embeddings: torch.Tensor,
    ids: torch.Tensor,
    sizes: torch.Tensor,
    *,
    weighting: Literal["inverse_size", "uniform"] = "inverse_size",
    include_diagonal: bool = False,
    eps: float = 1e-4,
) -> torch.Tensor:
    """§3.2 loss over all pairs of M sampled pixels: ``-Σ_pq w_pq [1{y_p=y_q} log σ_pq +
    1{y_p≠y_q} log(1-σ_pq)]``, with ``Σ w_pq = 1`` (:func:`embedding_pair_weights`).

    ``embeddings`` (M, d); ``ids`` (M,) instance labels (background is one more label);
    ``sizes`` (M,) sizes of their instances. σ is Eq. 1 from squared distances
    (``A² + B² - 2AB``, clamped at 0); ``log σ = log 2 - softplus(d²)`` and
    ``log(1-σ) = log tanh(d²/2)`` with ``d² >= eps`` (see
    :func:`~instseg_lib.models.embedding.log_dissimilarity`), so coinciding embeddings give
    a finite loss and gradient. Computed in float32. Example: two pixels of different
    instances at squared distance 1 give ``-log tanh(1/2) ≈ 0.7719``.
    """
    e = embeddings.float()
    d2 = pairwise_sq_distances(e, e)
    same = ids[:, None] == ids[None, :]
    ll = torch.where(same, log_similarity(d2), log_dissimilarity(d2, eps))
    w = embedding_pair_weights(sizes, weighting, include_diagonal)
    return -(w * ll).sum()


def embedding_loss(
    embedding: torch.Tensor,
    instances: torch.Tensor,
    valid: torch.Tensor | None = None,
    k: int = EMBEDDING_POINTS_PER_INSTANCE,
    *,
    weighting: Literal["inverse_size", "uniform"] = "inverse_size",
    include_diagonal: bool = False,
    eps: float = 1e-4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Embedding loss L_e of Fathi et al. §3.2 (Fig. 2), averaged over the images of a batch.

    ``embedding`` (B, d, H, W) pixel embeddings at label resolution; ``instances`` (B, H, W)
    int ids, 0 = background; ``valid`` (B, H, W) bool, False on void pixels (e.g.
    ``semantic == 255`` or crowd), which are never sampled and do not count in sizes.

    Per image: sample ``k`` valid pixels of each instance, **background counting as one
    more instance** (§3.2: pixels of "different objects (including the background)" are
    far apart), form all pairs of the sampled set S, target 1 for pairs of one instance
    and 0 otherwise, and take the weighted cross-entropy of σ (Eq. 1) with
    :func:`embedding_pair_loss`.

    Choices the paper leaves open (ours):

    - ``k``: §3.2 gives no value for L_e (its K = 10 is the seediness loss's, §3.4); the
      default 64 is ours, recipes pass the profile's ``pixels_per_instance``;
    - ``w_pq ∝ 1 / (n_p n_q)``, ``n`` the instance's valid pixel count in the image (crop),
      normalised to ``Σ_pq w_pq = 1`` per image. With K samples per instance, instance pair
      (i, j) then weighs ``K² / (n_i n_j)`` in total: small instances dominate and the
      (large) background weighs little. ``weighting="uniform"`` gives every sampled pair
      one weight, which is the Monte-Carlo estimate of the *dense* size-weighted loss over
      all pixel pairs (the sampling already draws K per instance, whatever its size);
    - normalisation: ``Σ w = 1`` replaces the printed ``1/|S|`` factor (with weights summing
      to 1, dividing again by |S| would only shrink the loss as the number of instances
      grows); the batch loss is the mean over images that have at least one pair;
    - diagonal pairs ``p = q`` are left out (σ = 1 exactly: zero loss, zero gradient, they
      would only dilute the weights); ``include_diagonal=True`` keeps them;
    - an instance with fewer than ``k`` valid pixels contributes all of them, once;
    - an image with a single instance (e.g. only background) still gets the pull-together
      term; an image without valid pixels contributes nothing.

    Sampling uses ``generator`` or torch's global RNG (seeded per step by the training loop).
    Returns a scalar that keeps the graph even when no image has a pair.
    """
    if embedding.dim() != 4 or instances.shape != (embedding.shape[0], *embedding.shape[-2:]):
        raise ValueError(f"embedding must be (B, d, H, W) and instances (B, H, W) of the same size; got "
                         f"{tuple(embedding.shape)} and {tuple(instances.shape)}")
    b, d = embedding.shape[:2]
    losses = []
    for i in range(b):
        ids = instances[i].reshape(-1).long()
        keep = ids >= 0 if valid is None else valid[i].reshape(-1).bool() & (ids >= 0)
        vidx = keep.nonzero(as_tuple=True)[0]
        if vidx.numel() < 2:
            continue
        vids = ids[vidx]
        counts = torch.bincount(vids)
        pick = vidx[sample_pixels_per_instance(vids, k, generator)]
        if pick.numel() < 2:
            continue
        pid = ids[pick]
        e = embedding[i].reshape(d, -1)[:, pick].T
        losses.append(embedding_pair_loss(e, pid, counts[pid], weighting=weighting,
                                          include_diagonal=include_diagonal, eps=eps))
    if not losses:
        return embedding.sum() * 0.0
    return torch.stack(losses).mean()


def seediness_loss(
    logits: torch.Tensor,
    embedding: torch.Tensor,
    instances: torch.Tensor,
    instance_classes: Sequence[torch.Tensor],
    valid: torch.Tensor | None = None,
    k: int = SEED_POINTS_PER_INSTANCE,
    *,
    taus: Sequence[float] | None = None,
    iou_threshold: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mask-classification loss L_cls of Fathi et al. §3.4, averaged over the batch.

    ``logits`` (B, T, C + 1, H, W): one classifier per τ of ``taus`` (default
    :data:`~instseg_lib.models.embedding.FATHI_TAUS`); ``embedding`` (B, d, H, W), used
    **detached** to build the targets; ``instances`` (B, H, W) ids; ``instance_classes``
    per image, class of id ``i`` at ``i - 1`` (as :func:`~instseg_lib.data.transforms.
    collate` gives them); ``valid`` (B, H, W) bool, False on void.

    Per image: ``k = 10`` random valid pixels per instance, background again counting as
    one more instance (so the seediness is also trained, towards label 0, on background);
    at each point p and each τ, grow ``m(p, τ)`` from the current embeddings and label p
    with the class of the best-matching ground truth if IoU > 0.5, else background
    (:func:`~instseg_lib.grouping.seeds.seediness_targets`); softmax cross-entropy of the
    τ-classifier at those points only. Targets are recomputed at every call.

    Normalisation (ours): the mean over the sampled points and the T classifiers of each
    image (the paper's ``1/|S|``), then the mean over images with at least one point.
    """
    taus = FATHI_TAUS if taus is None else tuple(taus)
    thr = SEED_IOU_THRESHOLD if iou_threshold is None else iou_threshold
    b, t, c = logits.shape[:3]
    if t != len(taus):
        raise ValueError(f"logits have {t} threshold classifiers for {len(taus)} taus {taus}")
    if len(instance_classes) != b:
        raise ValueError(f"need instance_classes for each of the {b} images; got {len(instance_classes)}")
    losses = []
    for i in range(b):
        ids = instances[i].reshape(-1).long()
        keep = ids >= 0 if valid is None else valid[i].reshape(-1).bool() & (ids >= 0)
        vidx = keep.nonzero(as_tuple=True)[0]
        if vidx.numel() == 0:
            continue
        pts = vidx[sample_pixels_per_instance(ids[vidx], k, generator)]
        cls = torch.as_tensor(instance_classes[i], device=logits.device).long()
        if cls.numel() and (int(cls.max()) >= c or int(cls.min()) < 0):
            raise ValueError(f"instance class {int(cls.max())} outside 0..{c - 1}")
        tg = seediness_targets(embedding[i], pts, instances[i], cls, taus,
                               None if valid is None else valid[i], thr)
        lg = logits[i].reshape(t, c, -1)[:, :, pts].float()  # (T, C + 1, M)
        losses.append(F.cross_entropy(lg, tg.labels))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


def fathi_lambda(step: int, hold_steps: int, ramp_steps: int, lam_max: float = FATHI_LAMBDA_MAX) -> float:
    """λ of ``L = L_e + λ L_cls`` at ``step`` (§3.5).

    "We initially set λ to 0, to give the embedding model time to learn proper
    embeddings ... We gradually increase λ to a maximum value of 0.2." The schedule shape
    is ours: 0 for ``hold_steps`` steps, then linear up to ``lam_max`` over ``ramp_steps``.
    """
    if step < hold_steps:
        return 0.0
    if ramp_steps <= 0:
        return lam_max
    return lam_max * min(1.0, (step - hold_steps + 1) / ramp_steps)


def fathi_loss(
    output: FathiOutput,
    batch: dict[str, Any],
    lam: float,
    *,
    k_embedding: int = EMBEDDING_POINTS_PER_INSTANCE,
    k_seed: int = SEED_POINTS_PER_INSTANCE,
    taus: Sequence[float] | None = None,
    weighting: Literal["inverse_size", "uniform"] = "inverse_size",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = L_e + λ L_cls`` (§3.5) on a collated batch; returns ``(loss, parts)``, ``parts``
    the two losses, detached (L_cls NaN when not computed).

    ``output`` is a :class:`~instseg_lib.models.FathiOutput` (``embedding``, ``logits``);
    ``batch`` carries ``instances``, ``semantic``, ``instance_classes`` and optionally
    ``crowd`` (:func:`~instseg_lib.data.transforms.collate`). Void = ``semantic == 255``
    or crowd. With ``lam == 0`` L_cls is not computed (its targets cost a mask growing pass).
    """
    valid = batch["semantic"] != 255
    if batch.get("crowd") is not None:
        valid = valid & ~batch["crowd"].bool()
    inst = batch["instances"]
    le = embedding_loss(output.embedding, inst, valid, k_embedding, weighting=weighting)
    parts = {"embedding": le.detach()}
    if lam == 0:
        # The zero term keeps the seediness head in the graph (DDP expects every parameter used).
        return le + output.logits.sum() * 0.0, {**parts, "seediness": torch.full_like(parts["embedding"], float("nan"))}
    lc = seediness_loss(output.logits, output.embedding, inst, batch["instance_classes"], valid, k_seed, taus=taus)
    parts["seediness"] = lc.detach()
    return le + lam * lc, parts


# --------------------------------------------------------------------------- PFN (Liang et al.)
#: Eq. 5: "The class-balancing parameter lambda is empirically set to 10".
PFN_LAMBDA = 10.0


def centre_sample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resampling of a full-resolution target to ``size``, each output
    cell taking the pixel at its centre (row ``floor((i + 0.5) H / h)``).

    ``x`` (B, C, H, W) or (B, H, W), any dtype. Used to give every stream of PFN its targets
    at its own resolution (DeepLab likewise supervises the stride-8 maps with down-sampled
    labels, PFN §3.1); a value is always one pixel's real target, never a blend of two
    instances' boxes.
    """
    H, W = x.shape[-2:]
    h, w = size
    if (h, w) == (H, W):
        return x
    ys = ((torch.arange(h, device=x.device) + 0.5) * (H / h)).long().clamp(max=H - 1)
    xs = ((torch.arange(w, device=x.device) + 0.5) * (W / w)).long().clamp(max=W - 1)
    return x[..., ys[:, None], xs[None, :]]


def pfn_location_loss(pred: torch.Tensor, target: torch.Tensor, foreground: torch.Tensor,
                      beta: float = 1.0) -> torch.Tensor:
    """PFN Eq. 2 divided by Omega (Eq. 4): ``sum_i [k*_i >= 1] R(t_i - t*_i) / Omega``.

    ``pred`` (B, D, h, w) one stream's (or the fused) location maps; ``target`` (B, D, H, W)
    and ``foreground`` (B, H, W) bool at full resolution (resampled to ``(h, w)`` by
    :func:`centre_sample`). ``R`` is Fast R-CNN's smooth-l1 (``beta`` = 1, its transition
    point), summed over the D channels; only foreground pixels contribute ("predicting the
    instance locations is only possible for foreground pixels"). Omega is the image's
    foreground pixel count **at the prediction's resolution**, so each stream's term is a mean
    per foreground pixel whatever its stride. Per image, then the mean over the batch; an
    image without foreground adds 0 (and no gradient).

    With targets normalised by the image size (``pfn_instance_targets(frame="absolute")``)
    errors stay below 1, where smooth-l1 with ``beta = 1`` is ``0.5 x^2``.
    """
    h, w = pred.shape[-2:]
    t = centre_sample(target, (h, w)).to(pred.dtype)
    fg = centre_sample(foreground.bool(), (h, w))
    per_pixel = F.smooth_l1_loss(pred, t, beta=beta, reduction="none").sum(1)
    per_image = (per_pixel * fg).flatten(1).sum(1) / fg.flatten(1).sum(1).clamp(min=1)
    return per_image.mean()


def pfn_number_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PFN Eq. 5's L_n, the Euclidean loss of the instance-number vector:
    ``(1/C) sum_c (g_c - g*_c)^2`` per image, mean over the batch. ``pred``/``target`` (B, C)."""
    return (pred - target.to(pred.dtype)).pow(2).mean(1).mean()


def pfn_loss(outputs: Mapping[str, Any], locations: torch.Tensor, foreground: torch.Tensor,
             numbers: torch.Tensor | None = None, *, lam: float = PFN_LAMBDA, beta: float = 1.0,
             semantic: torch.Tensor | None = None, ignore_index: int = 255) -> dict[str, torch.Tensor]:
    """PFN's training objective, Eq. 4 and 5: ``L = lambda L_o + L_n``.

    ``outputs`` is :class:`~instseg_lib.models.pfn.PFN`'s forward dict: ``locations``
    (fused, B x D x h x w), ``streams`` (name -> B x D x h_m x w_m, deep supervision),
    ``numbers`` (B x C), and ``semantic`` for "PFN unified". ``L_o = sum_m l_m + l_fuse``,
    each term by :func:`pfn_location_loss` (Eq. 4); ``L_n`` by :func:`pfn_number_loss`
    (skipped when ``numbers`` is None); lambda = 10 (Eq. 5). With ``semantic`` targets
    (B, H, W) and a ``semantic`` output, the unified variant adds the category-level
    cross-entropy with weight 1 (§4.3 "PFN unified": "the loss weight for category-level
    segmentation is set as 1").

    Returns ``{"loss", "location", "number", "location/<stream>", "location/fuse"[,
    "semantic"]}``; log the parts, optimise ``loss``.
    """
    terms: dict[str, torch.Tensor] = {}
    fuse = pfn_location_loss(outputs["locations"], locations, foreground, beta)
    terms["location/fuse"] = fuse
    total_o = fuse
    for name, pred in (outputs.get("streams") or {}).items():
        term = pfn_location_loss(pred, locations, foreground, beta)
        terms[f"location/{name}"] = term
        total_o = total_o + term
    terms["location"] = total_o
    loss = lam * total_o
    if numbers is not None and outputs.get("numbers") is not None:
        terms["number"] = pfn_number_loss(outputs["numbers"], numbers)
        loss = loss + terms["number"]
    if semantic is not None and outputs.get("semantic") is not None:
        logits = outputs["semantic"]
        sem = centre_sample(semantic, logits.shape[-2:]).long()
        terms["semantic"] = F.cross_entropy(logits, sem, ignore_index=ignore_index)
        if not (sem != ignore_index).any():
            terms["semantic"] = logits.sum() * 0.0
        loss = loss + terms["semantic"]
    terms["loss"] = loss
    return terms


# --------------------------------------------------------------------------- Arnab & Torr 2017
# Matched-ground-truth loss of "Pixelwise instance segmentation with a dynamically instantiated
# network", §3.4 (Eq. 7, Fig. 6). The instance labels 1..D follow the detections, so the ground
# truth's instance numbering is arbitrary: it is permuted to the prediction before the loss.


class MatchedGroundTruth(NamedTuple):
    """The matched ground truth ``G*`` of Eq. 7 (Fig. 6c) and the matching behind it.

    ``target`` (H, W) long: 0 on background, ``k`` on the pixels of the ground-truth
    instance matched to prediction label ``k``, ``ignore_index`` on void pixels (and on
    unmatched instances with ``unmatched="ignore"``). ``pred_labels``, ``gt_ids`` and
    ``iou``: the matched pairs (prediction label ``k >= 1``, ground-truth id ``j >= 1``).
    """

    target: torch.Tensor
    pred_labels: torch.Tensor
    gt_ids: torch.Tensor
    iou: torch.Tensor


def matched_ground_truth(
    pred_labels: torch.Tensor,
    label_classes: Sequence[int] | torch.Tensor,
    gt_instances: torch.Tensor,
    gt_classes: Sequence[int] | torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    unmatched: Literal["background", "ignore"] = "background",
    ignore_index: int = 255,
    label_boxes: Sequence[Sequence[float]] | torch.Tensor | None = None,
) -> MatchedGroundTruth:
    """Permute the ground truth to a prediction, §3.4 (Eq. 7).

    ``pred_labels`` (H, W): the predicted instance label of each pixel, ``0..D`` (argmax of
    the instance CRF); ``label_classes`` (D+1,): class of each label, entry 0 background
    (:func:`~instseg_lib.grouping.instance_crf.label_classes`); ``gt_instances`` (H, W):
    0 = no instance, ``1..N`` instance ids; ``gt_classes`` (N,): class of id ``j`` at
    ``j - 1``; ``valid`` (H, W) bool: False on void (and crowd) pixels.

    Segments are the pixels of one label (prediction, ``k >= 1``) or id (ground truth), on
    valid pixels only (void is not evaluated, VOC [13]). Eq. 7 is solved as "a maximum-weight
    bipartite matching problem" with edge weight the IoU of a prediction and a ground-truth
    segment of the same class, 0 otherwise, by ``scipy.optimize.linear_sum_assignment``
    (:func:`~instseg_lib.metrics.match_segments`); the rectangular assignment is the square
    one padded with zero-weight "dummy" nodes, and pairs of zero weight are dropped (they are
    matches to dummies). Pixels of ground-truth instances left unmatched become background
    (``unmatched="background"``: the prediction should not claim them under any label) or
    ``ignore_index`` (``"ignore"``: no loss there). Our choice of default: background, the
    reading of "leftover segments are matched to dummy nodes with zero overlap" in which a
    missed object's pixels are still supervised.

    ``label_boxes`` (D, 4) ``x0, y0, x1, y1``, optional (ours, not the paper's): the boxes of
    labels ``1..D`` (their detections). After Eq. 7's match, labels whose segment matched
    nothing (typically an *empty* segment: every pixel went to another label) and ground
    truth left unmatched are matched a second time, same class, by the IoU of the label's
    box with the instance's tight box (zero-IoU pairs dropped). Without it a network that
    starts by labelling everything background gets an all-background target, a loss of
    ~0 and no gradient towards any instance: a fixed point of Eq. 7 that a weak semantic
    subnetwork starts in.

    Ties: when two same-class segments have equal IoU with one prediction, Eq. 7 has
    several maximisers and scipy's order (the ground-truth numbering) picks one; the
    loss is invariant to the numbering everywhere else.
    """
    from .metrics.matching import match_segments

    if unmatched not in ("background", "ignore"):
        raise ValueError(f"unmatched must be 'background' or 'ignore', got {unmatched!r}")
    pred = pred_labels.reshape(pred_labels.shape[-2:]).long()
    gt = gt_instances.reshape(gt_instances.shape[-2:]).long()
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ in size")
    lc = torch.as_tensor(label_classes, dtype=torch.long).reshape(-1).cpu()
    gc = torch.as_tensor(gt_classes, dtype=torch.long).reshape(-1).cpu()
    n_lab, n_gt = len(lc), len(gc)
    if pred.numel() and (int(pred.max()) >= n_lab or bool((pred < 0).any())):
        raise ValueError(f"prediction labels must be in 0..{n_lab - 1} ({n_lab} label classes)")
    if gt.numel() and (int(gt.max()) > n_gt or bool((gt < 0).any())):
        raise ValueError(f"ground-truth ids must be in 0..{n_gt} ({n_gt} instance classes)")
    ok = torch.ones_like(gt, dtype=torch.bool) if valid is None else valid.reshape(gt.shape).bool()
    # joint histogram of (prediction label, gt id) over valid pixels -> intersections and areas
    joint = torch.bincount((pred[ok] * (n_gt + 1) + gt[ok]).cpu(), minlength=n_lab * (n_gt + 1))
    joint = joint.reshape(n_lab, n_gt + 1).double()
    inter = joint[1:, 1:]
    area_p, area_g = joint[1:].sum(1), joint[:, 1:].sum(0)
    iou = inter / (area_p[:, None] + area_g[None, :] - inter).clamp(min=1)
    rows, cols, w = match_segments(iou.numpy(), gc.numpy(), lc[1:].numpy())
    if label_boxes is not None and n_lab > 1 and n_gt:
        rows, cols, w = _box_fallback(rows, cols, w, label_boxes, lc, gc, gt, ok, n_lab, n_gt)
    pl, gi = torch.as_tensor(rows, dtype=torch.long) + 1, torch.as_tensor(cols, dtype=torch.long) + 1
    lut = torch.full((n_gt + 1,), 0 if unmatched == "background" else ignore_index, dtype=torch.long)
    lut[0] = 0
    lut[gi] = pl
    target = lut.to(gt.device)[gt]
    target[~ok] = ignore_index
    return MatchedGroundTruth(target, pl, gi, torch.as_tensor(w, dtype=torch.float64))


def _box_fallback(rows, cols, w, label_boxes, lc: torch.Tensor, gc: torch.Tensor, gt: torch.Tensor,
                  ok: torch.Tensor, n_lab: int, n_gt: int):
    """Second match of the labels and ground truth Eq. 7 left over, by box IoU (same class)."""
    import numpy as np

    from .metrics.masks import box_iou_matrix
    from .metrics.matching import match_segments

    lb = torch.as_tensor(label_boxes, dtype=torch.float64).reshape(-1, 4).numpy()
    if len(lb) != n_lab - 1:
        raise ValueError(f"label_boxes has {len(lb)} boxes for {n_lab - 1} instance labels")
    free_l = np.setdiff1d(np.arange(n_lab - 1), rows)
    free_g = np.setdiff1d(np.arange(n_gt), cols)
    if not free_l.size or not free_g.size:
        return rows, cols, w
    gt_boxes = np.zeros((free_g.size, 4))
    present = np.zeros(free_g.size, bool)
    g = gt.cpu().numpy()
    valid = ok.cpu().numpy()
    for j, gid in enumerate(free_g):
        ys, xs = np.nonzero((g == gid + 1) & valid)
        if ys.size:
            gt_boxes[j] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            present[j] = True
    biou = box_iou_matrix(lb[free_l], gt_boxes) * present[None, :]
    r2, c2, w2 = match_segments(biou, gc.numpy()[free_g], lc[1:].numpy()[free_l])
    return (np.concatenate([rows, free_l[r2]]), np.concatenate([cols, free_g[c2]]),
            np.concatenate([w, np.zeros(len(r2))]))


def matched_loss(
    output: torch.Tensor,
    label_classes: Sequence[int] | torch.Tensor,
    gt_instances: torch.Tensor,
    gt_classes: Sequence[int] | torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    unmatched: Literal["background", "ignore"] = "background",
    input_kind: Literal["probs", "logits"] = "probs",
    reduction: Literal["mean", "sum"] = "mean",
    label_boxes: Sequence[Sequence[float]] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy against the matched ground truth, Arnab & Torr §3.4.

    ``output`` (1, D+1, H, W): the instance CRF's marginals (``input_kind="probs"``, what
    mean field returns) or scores before a softmax (``"logits"``); one image, since D
    varies per image. The match (:func:`matched_ground_truth`) is recomputed at every call
    on the current prediction, ``argmax`` of the detached output: the paper matches "our
    instance segmentation prediction" and backpropagates only the cross-entropy ("once we
    have the matched ground truth ... we use the common cross-entropy loss").

    ``reduction="mean"`` averages over the supervised pixels; ``"sum"`` is §3.5's
    unnormalised loss ("we do not normalise the loss by the number of pixels", hence its
    1e-12 learning rate). With no supervised pixel the loss is 0 (in the graph).
    ``label_boxes``: the second, box-IoU match of :func:`matched_ground_truth`.
    """
    if output.ndim != 4 or output.shape[0] != 1:
        raise ValueError(f"output must be (1, D+1, H, W), got {tuple(output.shape)}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    ignore = -100  # never a label, whatever D
    with torch.no_grad():
        pred = output[0].argmax(0)
        m = matched_ground_truth(pred, label_classes, gt_instances, gt_classes, valid,
                                 unmatched=unmatched, ignore_index=ignore, label_boxes=label_boxes)
    target = m.target[None]
    if input_kind == "probs":
        logp = torch.log(output.clamp_min(1e-12))
    elif input_kind == "logits":
        logp = F.log_softmax(output, dim=1)
    else:
        raise ValueError(f"input_kind must be 'probs' or 'logits', got {input_kind!r}")
    if not (target != ignore).any():
        return output.sum() * 0.0
    return F.nll_loss(logp, target, ignore_index=ignore, reduction=reduction)
