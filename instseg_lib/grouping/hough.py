"""Pixels -> instances by Hough-like voting and NMS (Wu, Shen & van den Hengel 2016, §2.1).

Test-time steps of §2.1 (Fig. 1):

1. top-n category masks: a pixel joins the mask of category ``c`` when ``c`` is among its
   ``n`` highest-scoring categories; background is ignored;
2. every pixel of a category mask votes the box its localization net predicts
   ("apply the transform maps to the score maps");
3. NMS over the voted boxes, scored by the pixels' semantic scores (per category);
4. each kept maximum and the pixels it suppressed form an instance mask;
5. instance confidence = mean semantic score of its pixels;
6. region (mask) NMS [SDS, Hariharan et al. 2014] gives the final instances.

"Suppressed by" is computed without a second NMS loop: in greedy NMS a box is removed by
the highest-scoring kept box of its category whose IoU with it exceeds the threshold (any
higher-scoring overlapping kept box would have removed it first). So each pixel is
assigned to that kept box; kept boxes fall on themselves.

Units: ``box_pred`` channels ``(dy, dx, h, w)`` in pixels, box centre = pixel + (dy, dx),
as produced by :class:`instseg_lib.models.FCRNLocalization`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torchvision.ops import batched_nms, box_iou


class Instances(NamedTuple):
    """Grouping output: ``masks`` (M, H, W) bool, ``classes`` (M,) long, ``scores`` (M,)."""

    masks: torch.Tensor
    classes: torch.Tensor
    scores: torch.Tensor


def _empty(h: int, w: int, device: torch.device) -> Instances:
    return Instances(
        torch.zeros(0, h, w, dtype=torch.bool, device=device),
        torch.zeros(0, dtype=torch.long, device=device),
        torch.zeros(0, dtype=torch.float32, device=device),
    )


def top_n_masks(
    sem_prob: torch.Tensor, top_n: int, background: int = 0, foreground_only: bool = True
) -> torch.Tensor:
    """Step 1: (C, H, W) bool, True where the category is among the pixel's top-n scores.

    The background channel is always False. With ``foreground_only`` only pixels whose
    best category is not background vote ("we ignore the background and only transform
    the foreground pixels", §2.1); otherwise a background pixel whose second-best
    category is 'sheep' also joins the top-2 'sheep' mask (the literal top-n reading).
    """
    c = sem_prob.shape[0]
    idx = sem_prob.topk(min(top_n, c), dim=0).indices
    member = torch.zeros_like(sem_prob, dtype=torch.bool).scatter_(0, idx, True)
    if foreground_only:
        member &= (idx[0] != background)[None]
    member[background] = False
    return member


def voted_boxes(
    box_pred: torch.Tensor, cls: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Step 2: ``(P, 4)`` boxes ``(x1, y1, x2, y2)`` voted by pixels ``(ys, xs)`` of class ``cls``.

    ``box_pred`` is ``(4 * (num_classes - 1), H, W)`` class-wise (class ``c`` uses channels
    ``4(c-1):4c``) or ``(4, H, W)`` shared by all classes.
    """
    if box_pred.shape[0] == 4:
        v = box_pred[:, ys, xs]
    else:
        grouped = box_pred.reshape(num_classes - 1, 4, *box_pred.shape[-2:])
        v = grouped[cls - 1, :, ys, xs].T
    v = v.float()
    cy, cx = ys.float() + v[0], xs.float() + v[1]
    # Degenerate sizes would give IoU 0 with everything; keep a tiny positive extent.
    h, w = v[2].clamp(min=1e-3), v[3].clamp(min=1e-3)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def assign_to_kept(
    boxes: torch.Tensor,
    cls: torch.Tensor,
    kept_boxes: torch.Tensor,
    kept_cls: torch.Tensor,
    iou: float,
    assign: Literal["first", "all"] = "first",
    chunk: int = 1 << 22,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 4: which kept maxima each voting pixel belongs to, as index pairs.

    ``kept_*`` are in descending score order (as NMS returns them). Returns
    ``(pixel_idx, kept_idx)`` long tensors. ``assign="first"``: each pixel pairs with the
    highest-scoring kept box of its class with IoU > ``iou`` (exactly the box that
    suppressed it in greedy NMS); pixels no such box covers are left out.
    ``assign="all"``: a pixel pairs with every kept box of its class it overlaps above
    ``iou`` (instances may then overlap; region NMS resolves them). IoUs are computed
    per class and in chunks, so memory stays bounded by ``chunk`` entries.
    """
    pix_parts, inst_parts = [], []
    for c in kept_cls.unique():
        pi = (cls == c).nonzero(as_tuple=True)[0]
        ki = (kept_cls == c).nonzero(as_tuple=True)[0]  # ascending = descending score
        step = max(1, chunk // ki.numel())
        for s in range(0, pi.numel(), step):
            rows = pi[s : s + step]
            ov = box_iou(boxes[rows], kept_boxes[ki]) > iou
            if assign == "all":
                r, k = ov.nonzero(as_tuple=True)
                pix_parts.append(rows[r])
                inst_parts.append(ki[k])
            else:
                hit = ov.any(1)
                first = ov.to(torch.uint8).argmax(1)  # first True = highest score
                pix_parts.append(rows[hit])
                inst_parts.append(ki[first[hit]])
    if not pix_parts:
        empty = torch.zeros(0, dtype=torch.long, device=boxes.device)
        return empty, empty
    return torch.cat(pix_parts), torch.cat(inst_parts)


def region_nms(
    masks: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou: float, classwise: bool = True
) -> torch.Tensor:
    """Step 6: greedy mask NMS; returns kept indices in descending score order.

    Mask IoU by one matrix product over flattened masks; the greedy pass is a short loop
    over the (few) instances.
    """
    order = scores.argsort(descending=True)
    flat = masks[order].reshape(len(order), -1).float()
    inter = flat @ flat.T
    area = flat.sum(1)
    ious = inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-6)
    over = ious > iou
    if classwise:
        c = classes[order]
        over &= c[:, None] == c[None, :]
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=masks.device)
    keep = []
    over_cpu, sup = over.cpu(), suppressed.cpu()
    for i in range(len(order)):
        if sup[i]:
            continue
        keep.append(i)
        sup |= over_cpu[i]
    return order[torch.tensor(keep, dtype=torch.long, device=masks.device)]


@torch.no_grad()
def hough_group(
    sem_prob: torch.Tensor,
    box_pred: torch.Tensor,
    top_n: int = 1,
    nms_iou: float = 0.5,
    region_nms_iou: float = 0.5,
    min_size: int = 1,
    *,
    stride: int = 1,
    assign: Literal["first", "all"] = "first",
    region_classwise: bool = True,
    max_instances: int | None = 100,
    background: int = 0,
    foreground_only: bool = True,
) -> Instances:
    """Group one image's pixels into instances, §2.1 steps 1-6.

    ``sem_prob`` (C, H, W) softmax probabilities, background channel ``background``
    (must be 0 when ``box_pred`` is class-wise). ``box_pred`` (4*(C-1), H, W) class-wise
    or (4, H, W), channels ``(dy, dx, h, w)`` in pixels.

    - ``top_n``: masks per category (step 1; the paper's recall trick);
    - ``foreground_only``: only pixels whose top-1 category is not background vote
      (see :func:`top_n_masks`);
    - ``nms_iou``: IoU threshold of the box NMS (step 3) and of "suppressed by" (step 4);
    - ``region_nms_iou``: mask-IoU threshold of the final region NMS (step 6);
    - ``min_size``: instances with fewer pixels are dropped before step 6;
    - ``stride``: only pixels on a ``stride`` grid vote and enter the NMS (speed);
      every mask pixel is still assigned to the kept box that would suppress it, and
      pixels no kept box covers above ``nms_iou`` are left out;
    - ``assign``: ``"first"`` (default): each pixel joins the one maximum that
      suppressed it, so one category's masks are disjoint and a class-wise step 6 never
      fires; ``"all"``: a pixel joins every kept maximum of its category it overlaps
      above ``nms_iou``, masks may overlap and step 6 resolves them;
    - ``region_classwise``: region NMS within a category (default, as SDS does per
      category) or across categories (then it removes the weaker duplicates that top-n
      masks of other categories create for one region);
    - ``max_instances``: keep the highest-scoring ones before step 6 (bounds its cost).

    The paper gives no values for the thresholds; the defaults are ours. Returns
    :class:`Instances` sorted by descending score; no foreground gives an empty result.
    """
    c, h, w = sem_prob.shape
    dev = sem_prob.device
    member = top_n_masks(sem_prob, top_n, background, foreground_only)
    cls, ys, xs = member.nonzero(as_tuple=True)
    if cls.numel() == 0:
        return _empty(h, w, dev)
    scores = sem_prob[cls, ys, xs].float()
    boxes = voted_boxes(box_pred, cls, ys, xs, c)

    # Step 3: class-wise NMS over the voting pixels (sub-sampled when stride > 1).
    if stride > 1:
        vote = ((ys % stride) == 0) & ((xs % stride) == 0)
        vidx = vote.nonzero(as_tuple=True)[0]
    else:
        vidx = torch.arange(cls.numel(), device=dev)
    if vidx.numel() == 0:
        return _empty(h, w, dev)
    keep = vidx[batched_nms(boxes[vidx], scores[vidx], cls[vidx], nms_iou)]
    kept_boxes, kept_cls = boxes[keep], cls[keep]

    # Step 4: trace back the suppressed pixels of each maximum. A kept box's only
    # same-class kept box above the threshold is itself, so only the others are searched.
    others = torch.ones(cls.numel(), dtype=torch.bool, device=dev)
    others[keep] = False
    oidx = others.nonzero(as_tuple=True)[0]
    p_o, inst_o = assign_to_kept(boxes[oidx], cls[oidx], kept_boxes, kept_cls, nms_iou, assign)
    pix = torch.cat([keep, oidx[p_o]])
    inst = torch.cat([torch.arange(keep.numel(), device=dev), inst_o])

    # Step 5: confidence = mean semantic score of the instance's pixels.
    k = keep.numel()
    size = torch.zeros(k, device=dev).index_add_(0, inst, torch.ones_like(scores[pix]))
    conf = torch.zeros(k, device=dev).index_add_(0, inst, scores[pix]) / size.clamp(min=1)
    sel = (size >= max(min_size, 1)).nonzero(as_tuple=True)[0]
    if max_instances is not None and sel.numel() > max_instances:
        sel = sel[conf[sel].topk(max_instances).indices]
    if sel.numel() == 0:
        return _empty(h, w, dev)
    # Dense masks only for the surviving instances (bounded memory on noisy votes).
    remap = torch.full((k,), -1, dtype=torch.long, device=dev)
    remap[sel] = torch.arange(sel.numel(), device=dev)
    j = remap[inst]
    on = j >= 0
    masks = torch.zeros(sel.numel(), h * w, dtype=torch.bool, device=dev)
    masks[j[on], ys[pix[on]] * w + xs[pix[on]]] = True
    masks, classes, conf = masks.reshape(-1, h, w), kept_cls[sel], conf[sel]

    # Step 6: region NMS.
    final = region_nms(masks, conf, classes, region_nms_iou, classwise=region_classwise)
    return Instances(masks[final], classes[final], conf[final])
