"""Speed of the AP^r suite against pycocotools' COCOeval, on the same data in one run.

    python benchmarks/bench_metrics.py                 # 1,449 images x 100 predictions, VOC size
    python benchmarks/bench_metrics.py --images 200    # quicker

Data: for each of N images of VOC size (500 x 375), 1-5 ground-truth objects and 100
scored predictions over 20 classes (jittered copies of the objects plus random regions),
all as polygons turned into COCO RLEs. Both evaluators get exactly these RLEs:

- ours: per image ``iou_matrix`` (pycocotools RLE IoU, vectorised) + ``SDSEvaluator``
  (SDS protocol), then AP^r at the 9 thresholds t = 0.1 ... 0.9 (AP^r_vol);
- COCOeval segm: ground truth index, ``loadRes``, ``evaluate``, ``accumulate``,
  ``summarize`` (10 thresholds, 4 area ranges, as it always does).

It prints wall times and the ratio (the issue asks for >= 3x), and the bytes the streaming
evaluator holds next to the bytes the decoded masks would take.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from instseg_lib.metrics import VOL_THRESHOLDS, SDSEvaluator, iou_matrix


def _polygon(rng, cy, cx, ry, rx, n=24):
    a = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.8, 1.2, n)
    return np.stack([cx + rx * r * np.cos(a), cy + ry * r * np.sin(a)], 1).ravel().tolist()


def make_data(n_images: int, n_preds: int, h: int, w: int, seed: int):
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n_images):
        n_gt = int(rng.integers(1, 6))
        objs = [(rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w,
                 rng.uniform(0.08, 0.3) * h, rng.uniform(0.08, 0.3) * w) for _ in range(n_gt)]
        gt_cls = rng.integers(1, 21, n_gt)
        gt_polys = [_polygon(rng, *o) for o in objs]
        pred_polys, pred_cls = [], []
        for k in range(n_preds):
            if k < 3 * n_gt:  # jittered copies of the objects (some with a wrong class)
                j = k % n_gt
                cy, cx, ry, rx = objs[j]
                s = rng.normal(0, 0.1, 4)
                pred_polys.append(_polygon(rng, cy + s[0] * ry, cx + s[1] * rx,
                                           ry * (1 + s[2]), rx * (1 + s[3])))
                pred_cls.append(int(gt_cls[j]) if rng.random() < 0.8 else int(rng.integers(1, 21)))
            else:
                pred_polys.append(_polygon(rng, rng.uniform(0, h), rng.uniform(0, w),
                                           rng.uniform(0.03, 0.3) * h, rng.uniform(0.03, 0.3) * w))
                pred_cls.append(int(rng.integers(1, 21)))
        gt_rles = mask_utils.frPyObjects(gt_polys, h, w)
        pred_rles = mask_utils.frPyObjects(pred_polys, h, w)
        images.append((i + 1, gt_rles, gt_cls, pred_rles, np.asarray(pred_cls),
                       rng.random(n_preds)))
    return images


def run_ours(images, protocol="sds"):
    ev = SDSEvaluator(protocol, classes=range(1, 21))
    for img_id, gt, gc, pred, pc, sc in images:
        ev.add_iou(img_id, iou_matrix(pred, gt), gc, pc, sc)
    table = ev.compute(VOL_THRESHOLDS)
    return table, ev.nbytes


def run_cocoeval(images, h, w):
    anns, results = [], []
    for img_id, gt, gc, pred, pc, sc in images:
        for r, c, a in zip(gt, gc, mask_utils.area(gt)):
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": int(c),
                         "segmentation": r, "area": float(a), "iscrowd": 0,
                         "bbox": mask_utils.toBbox(r).tolist()})
        for r, c, s in zip(pred, pc, sc):
            results.append({"image_id": img_id, "category_id": int(c), "segmentation": r,
                            "score": float(s)})
    dataset = {"images": [{"id": i[0], "height": h, "width": w} for i in images],
               "annotations": anns, "categories": [{"id": c} for c in range(1, 21)]}
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return time.perf_counter() - t0, ev.stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1449)
    p.add_argument("--preds", type=int, default=100)
    p.add_argument("--height", type=int, default=375)
    p.add_argument("--width", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    t0 = time.perf_counter()
    images = make_data(a.images, a.preds, a.height, a.width, a.seed)
    print(f"data: {a.images} images x {a.preds} predictions, {a.height}x{a.width} px "
          f"(generated in {time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    table, held = run_ours(images, "sds")
    t_sds = time.perf_counter() - t0
    t0 = time.perf_counter()
    fcis, _ = run_ours(images, "fcis")
    t_fcis = time.perf_counter() - t0
    t_coco, stats = run_cocoeval(images, a.height, a.width)

    mask_bytes = a.images * a.preds * a.height * a.width  # one byte per pixel, decoded
    print(f"SDS AP^r_vol (9 thresholds, IoU included): {t_sds:7.2f} s   "
          f"mAP_r@0.5 = {table.map_at(0.5):.4f}  AP^r_vol = {table.ap_vol:.4f}")
    print(f"FCIS-variant AP^r_vol (9 thresholds):      {t_fcis:7.2f} s   "
          f"AP^r_vol = {fcis.ap_vol:.4f}")
    print(f"pycocotools COCOeval segm:                 {t_coco:7.2f} s   "
          f"AP = {stats[0]:.4f}  AP50 = {stats[1]:.4f}")
    print(f"ratio COCOeval / SDS  = {t_coco / t_sds:.2f}x  (target >= 3x)")
    print(f"ratio COCOeval / FCIS = {t_coco / t_fcis:.2f}x")
    print(f"memory: the SDS evaluator holds {held / 1e6:.2f} MB of per-image IoU matrices and "
          f"scores; the decoded prediction masks would be {mask_bytes / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
