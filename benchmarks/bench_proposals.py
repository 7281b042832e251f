"""BoxSup's ingredients on VOC twin images: proposal quality and speed, E_o / E_r magnitudes,
and the quality of the supervision masks before any training.

1. Per proposal method -- our Selective Search (segments), the SLIC-merging stand-in for
   MCG/GOP (segments), OpenCV's ximgproc Selective Search "fast" (boxes, the reference):
   seconds per image, number of proposals, and ABO / recall@0.5 / recall@0.7 against the
   number of proposals, with masks (segments vs instance masks, void left out) and with
   boxes (tight boxes vs ground-truth boxes, the only comparison OpenCV allows).
2. Magnitudes of E_o (Eq. 2) and lambda * E_r (Eq. 3, lambda = 3): their standard
   deviations over the 20 candidates whose tight boxes fit a box best (the ones the
   selection decides between), for both readings of Eq. 2's N, with made-up networks (no
   net is trained here): "untrained" (logits N(0, 0.1)), "half trained" and "trained"
   (logit +1.5 / +3 on the true class, N(0, 1) noise).
3. Mean IoU of the label maps each method of Table 2 would train with in epoch 1 against
   the true semantic maps: rectangles, GrabCut (with its fallback counts), and BoxSup's
   first update (E_o alone, argmin) on each proposal method.
4. Speed at the issue's size: seconds per 320x480 VOC-twin scene
   (:func:`instseg_lib.data.scene_voc.voc_scene`) for each method (target <= 1 s, uncached),
   as wall and process CPU time (the latter robust to other jobs on a shared machine).

Prints, never asserts. Timings are wall time on whatever the machine is doing.

    python benchmarks/bench_proposals.py                   # 20 val images of the cpu twin
    python benchmarks/bench_proposals.py --profile smoke --images 8
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from instseg_lib.boxsup import (
    LAMBDA,
    boxsup_labels,
    grabcut_labels,
    log_softmax_np,
    overlap_costs,
    rectangle_labels,
    regression_costs,
)
from instseg_lib.data import MissingDatasetError, open_dataset
from instseg_lib.metrics import SemanticEvaluator
from instseg_lib.proposals import (
    QualityEvaluator,
    box_best_overlap,
    mask_best_overlap,
    opencv_selective_search_boxes,
    selective_search,
    slic_merge_proposals,
)

KS = (1, 10, 30, 100, 300, 1000)
COMPETE = 20  # candidates per box whose E_o / E_r spreads are compared


def load(profile: str, split: str, n: int):
    try:
        ds = open_dataset("voc", split, profile=profile)
    except MissingDatasetError:
        from instseg_lib.data.synthetic import generate

        tmp = tempfile.mkdtemp(prefix="bench_proposals_")
        print(f"(no {profile} VOC twin under INSTSEG_DATA; generating the smoke twin in {tmp})")
        ds = open_dataset("voc", split, root=generate("voc", "smoke", tmp + "/voc", workers=1))
    return [ds[i] for i in range(min(n, len(ds)))]


def table(name: str, res) -> None:
    df = res.to_frame()
    print(f"  {name}: {res.n_objects} objects, {res.mean_proposals:.0f} proposals per image on average")
    print("    " + df.round(3).to_string().replace("\n", "\n    "))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--split", default="val")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--speed-images", type=int, default=3, help="320x480 scenes timed in part 4 (0: skip)")
    args = ap.parse_args()
    samples = load(args.profile, args.split, args.images)
    print(f"{len(samples)} VOC twin images ({args.profile}, {args.split}), sizes "
          f"{sorted({s.size for s in samples})[:3]}...")

    # ------------------------------------------------------------------ 1. proposals
    methods = {"selective_search (ours)": selective_search, "slic_merge (MCG/GOP stand-in)": slic_merge_proposals}
    cands: dict[str, list] = {}
    print("\n== proposal quality (segments vs instance masks | tight boxes vs gt boxes) ==")
    for name, fn in methods.items():
        mq, bq, t = QualityEvaluator(KS), QualityEvaluator(KS), 0.0
        cands[name] = []
        for s in samples:
            t0 = time.perf_counter()
            c = fn(s.image)
            t += time.perf_counter() - t0
            cands[name].append(c)
            mq.add(mask_best_overlap(s.instances, c, KS, void=s.semantic == 255, n_objects=s.num_instances),
                   s.instance_classes, len(c))
            bq.add(box_best_overlap(s.boxes, c.boxes(), KS), s.instance_classes, len(c))
        print(f"\n{name}: {t / len(samples):.3f} s/image")
        table("masks", mq.compute())
        table("boxes", bq.compute())
    try:
        oq, t = QualityEvaluator(KS), 0.0
        for s in samples:
            t0 = time.perf_counter()
            b = opencv_selective_search_boxes(s.image, "fast")
            t += time.perf_counter() - t0
            oq.add(box_best_overlap(s.boxes, b, KS), s.instance_classes, len(b))
        print(f"\nOpenCV ximgproc selective search 'fast' (reference, boxes only): {t / len(samples):.3f} s/image")
        table("boxes", oq.compute())
    except ImportError:
        print("\n(OpenCV contrib not installed: no reference)")

    # ------------------------------------------------------------------ 2. E_o vs lambda E_r
    print(f"\n== spreads per box over its {COMPETE} best-fitting candidates (median over boxes; SS candidates) ==")
    rng = np.random.default_rng(0)
    rows = []
    for net, boost in (("untrained", 0.0), ("half trained", 1.5), ("trained", 3.0)):
        stats = {k: [] for k in ("E_o[boxes]", "E_o[proposals]", "lam*E_r")}
        moved = {"boxes": [], "proposals": []}  # does lambda E_r change the argmin of E_o?
        means = []
        for s, c in zip(samples, cands["selective_search (ours)"]):
            if not s.num_instances:
                continue
            if net == "untrained":
                logits = rng.normal(0, 0.1, (s.num_classes, *s.size))
            else:
                logits = rng.normal(0, 1.0, (s.num_classes, *s.size))
                sem = np.where(s.semantic == 255, 0, s.semantic)
                np.put_along_axis(logits, sem[None].astype(np.int64), boost + np.take_along_axis(
                    logits, sem[None].astype(np.int64), 0), axis=0)
            lp = log_softmax_np(logits)
            e_r = regression_costs(c, s.instance_classes, lp)
            means.append(float(e_r.mean()))
            e_o = overlap_costs(s.boxes, c.boxes(), "boxes")
            # the contest that matters: the COMPETE candidates that fit the box best
            near = np.argsort(e_o, axis=1, kind="stable")[:, :COMPETE]
            pick = lambda a: np.take_along_axis(a, near, axis=1)  # noqa: E731
            for key, arr in (("E_o[boxes]", e_o), ("E_o[proposals]", overlap_costs(s.boxes, c.boxes(), "proposals")),
                             ("lam*E_r", LAMBDA * e_r)):
                stats[key] += list(pick(arr).std(axis=1))
            for norm in moved:
                e_on = overlap_costs(s.boxes, c.boxes(), norm)
                moved[norm] += list(e_on.argmin(axis=1) != (e_on + LAMBDA * e_r).argmin(axis=1))
        med = {k: float(np.median(v)) for k, v in stats.items()}
        med.update({f"moved[{k}]": float(np.mean(v)) for k, v in moved.items()})
        rows.append((net, float(np.mean(means)), med))
    print(f"  {'net':>13} {'mean E_r':>9} {'std E_o[N=boxes]':>17} {'std E_o[N=proposals]':>21} "
          f"{'std 3*E_r':>10} {'ratio boxes':>12} {'ratio proposals':>16} {'moved boxes':>12} {'moved props':>12}")
    for net, m, med in rows:
        print(f"  {net:>13} {m:9.3f} {med['E_o[boxes]']:17.4f} {med['E_o[proposals]']:21.6f} "
              f"{med['lam*E_r']:10.4f} {med['lam*E_r'] / med['E_o[boxes]']:12.2f} "
              f"{med['lam*E_r'] / med['E_o[proposals]']:16.1f} {med['moved[boxes]']:12.2f} {med['moved[proposals]']:12.2f}")
    print("  (ratio = std of lambda E_r / std of E_o over those candidates; ~1 means lambda = 3 balances them;")
    print("   moved = fraction of boxes whose cheapest candidate changes when lambda E_r is added to E_o)")

    # ------------------------------------------------------------------ 3. epoch-1 supervision
    print("\n== epoch-1 supervision masks vs true semantic maps (mIoU over classes present) ==")
    evs = {k: SemanticEvaluator(21) for k in ("rectangles", "GrabCut", *[f"BoxSup first update, {m}" for m in methods])}
    fallbacks, n_boxes, t_gc = {}, 0, 0.0
    for i, s in enumerate(samples):
        evs["rectangles"].add(s.semantic, rectangle_labels(s.size, s.boxes, s.instance_classes, 21))
        t0 = time.perf_counter()
        gc = grabcut_labels(s.image, s.boxes, s.instance_classes, 21)
        t_gc += time.perf_counter() - t0
        evs["GrabCut"].add(s.semantic, gc.labels)
        for r, k in gc.reasons.items():
            fallbacks[r] = fallbacks.get(r, 0) + k
        n_boxes += s.num_instances
        for m in methods:
            out = boxsup_labels(cands[m][i], s.boxes, s.instance_classes, 21, mode="argmin")
            evs[f"BoxSup first update, {m}"].add(s.semantic, out.labels)
    for k, ev in evs.items():
        print(f"  {k:>50}: mIoU {ev.compute().mean_iou:.3f}")
    print(f"  GrabCut: {t_gc / len(samples):.3f} s/image; fallbacks to the rectangle over {n_boxes} boxes: {fallbacks}")

    # ------------------------------------------------------------------ 4. speed at 320x480
    if args.speed_images > 0:
        from instseg_lib.data.scene_voc import voc_scene

        print(f"\n== seconds per 320x480 VOC-twin scene, uncached (target <= 1 s per method), {args.speed_images} "
              "scenes ==")
        images = [voc_scene(np.random.default_rng(1000 + i), 320, 480).image for i in range(args.speed_images)]
        for name, fn in methods.items():
            wall, cpu, n = [], [], []
            for im in images:
                t0, c0 = time.perf_counter(), time.process_time()
                c = fn(im)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                n.append(len(c))
            print(f"  {name:>32}: wall {np.median(wall):.2f} s, process CPU {np.median(cpu):.2f} s (median), "
                  f"{np.mean(n):.0f} candidates per image")


if __name__ == "__main__":
    main()
