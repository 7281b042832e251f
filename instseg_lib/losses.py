"""Training losses of the book.

Wu, Shen & van den Hengel 2016:

- :func:`bootstrapped_cross_entropy`: online bootstrapping of hard pixels, §2.2 Eq. 1.
- :func:`weighted_smooth_l1`: the localization net's smoothed-l1 loss [Fast R-CNN] with
  per-instance size weights and IoU-based bootstrapping (§2.1, §2.2).

Liang et al. 2015 (PFN):

- :func:`pfn_location_loss`: smooth-l1 on foreground pixels divided by their count (Eq. 2,
  one term of Eq. 4); :func:`pfn_number_loss`: the Euclidean loss of the instance numbers
  (Eq. 5's L_n); :func:`pfn_loss`: L = lambda L_o + L_n with deep supervision (Eq. 4, 5).

**K is per image (per crop).** §2.2 derives Eq. 1 "for simplicity" with one crop per
mini-batch and asks for "at least a reasonable number of pixels kept per mini-batch";
Table 7's "keep the 512 hardest pixels" therefore counts pixels of one crop. With
batches of several crops we keep K per crop, so the kept set does not shrink relative to
the crop as the batch grows and every crop contributes hard pixels. Pixels kept in all
crops of the batch are then averaged together, as Eq. 1 averages over the kept set.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F

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
