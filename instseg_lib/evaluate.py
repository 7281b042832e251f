"""Evaluate your own predictions with the protocols of the five papers.

    python -m instseg_lib.evaluate --gt GT --pred PRED --protocol PROTOCOL [--per-class]

``PROTOCOL`` is one of

- ``sds``        AP^r, SDS protocol (Hariharan et al. 2014): ``mAP_r@0.1`` ... ``mAP_r@0.9``,
                 ``mAP_r_vol``; what Wu 2016, Arnab & Torr 2017, PFN and Fathi 2017 report;
- ``sds-fcis``   the MNC/FCIS/ChainerCV variant of AP^r (arg-max gt, IoU >= t); same keys;
- ``coco``       ``pycocotools`` COCOeval (segm): ``AP``, ``AP50``, ``AP75``;
- ``cityscapes`` cityscapesScripts instance AP: ``AP``, ``AP50``;
- ``semantic``   ``pixel_acc``, ``mean_acc``, ``mIoU``.

GT is a COCO instances JSON. For ``cityscapes`` it may instead be a folder holding
``*_gtFine_instanceIds.png`` files (then a prediction's ``image_id`` is the frame name,
e.g. ``"frankfurt_000000_000294"``, and ``category_id`` a Cityscapes label id); with a
COCO JSON, ``iscrowd`` regions play the role of Cityscapes group regions. For
``semantic``, GT is a folder of label PNGs (255 = void) and PRED a folder of predicted
label PNGs with the same relative paths.

PRED (instance protocols) is a COCO results JSON: a list of ``{"image_id",
"category_id", "segmentation": RLE, "score"}``. For ``cityscapes`` with a GT folder it may
instead be a folder in the cityscapesScripts results format: one ``<frame>*.txt`` per frame
whose lines are ``<mask PNG, relative to the txt> <label id> <score>``, each mask a PNG whose
non-zero pixels are the instance.

Every input file is checked as it is read: a damaged, truncated or empty file, or one of the
wrong kind (e.g. an 8-bit ``instanceIds`` PNG, which cannot hold instance ids), is an error
naming the file, never a silently different score.

All values are fractions in [0, 1]. The result is one JSON object on stdout; errors go
to stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .metrics.ap import VOL_THRESHOLDS, SDSEvaluator
from .metrics.cityscapes import CityscapesEvaluator
from .metrics.coco import coco_segm_eval, load_coco
from .metrics.errors import (
    EmptyPredictionsWarning,
    MetricsInputError,
    MissingScoreError,
    PredictionFormatError,
    UnknownCategoryError,
    UnknownImageError,
)
from .metrics.masks import iou_matrix, segmentation_to_rle
from .metrics.semantic import SemanticEvaluator

PROTOCOL_CHOICES = ("sds", "sds-fcis", "coco", "cityscapes", "semantic")
CITYSCAPES_GT_SUFFIX = "_gtFine_instanceIds.png"


# --------------------------------------------------------------------------- predictions


def read_results(path: str | Path) -> list[dict]:
    """Load a COCO results JSON; it must be a list of records."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise PredictionFormatError(f"prediction file {path} does not exist")
    except IsADirectoryError:
        raise PredictionFormatError(f"prediction file {path} is a folder; only the cityscapes protocol "
                                    f"takes a folder of results (txt + PNG)")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise PredictionFormatError(f"prediction file {path} is not valid JSON ({exc}); it is damaged or "
                                    f"truncated: write it again")
    if not isinstance(data, list):
        raise PredictionFormatError(
            f"prediction file {path}: expected a COCO results list "
            f"[{{image_id, category_id, segmentation, score}}, ...], got {type(data).__name__}"
        )
    return data


def validate_results(results: list, image_sizes: dict[Any, tuple[int, int]],
                     categories: set[int], source: str = "predictions"
                     ) -> dict[Any, tuple[list, np.ndarray, np.ndarray]]:
    """Check every record and group them per image as ``(rles, classes, scores)``.

    Raises :class:`UnknownImageError`, :class:`UnknownCategoryError`,
    :class:`MaskSizeError`, :class:`MissingScoreError` or :class:`PredictionFormatError`
    naming the record; an empty list only warns.
    """
    if len(results) == 0:
        warnings.warn(f"{source}: the prediction file is empty; every AP is 0",
                      EmptyPredictionsWarning, stacklevel=2)
    per: dict[Any, tuple[list, list, list]] = defaultdict(lambda: ([], [], []))
    for k, r in enumerate(results):
        if not isinstance(r, dict):
            raise PredictionFormatError(f"{source}: result #{k} is not an object")
        for field in ("image_id", "category_id", "segmentation"):
            if field not in r:
                raise PredictionFormatError(f"{source}: result #{k} has no '{field}'")
        img = r["image_id"]
        if img not in image_sizes:
            raise UnknownImageError(
                f"{source}: result #{k} is for image_id {img!r}, which is not in the ground "
                f"truth"
            )
        if r["category_id"] not in categories:
            raise UnknownCategoryError(
                f"{source}: result #{k} (image_id {img!r}) has category_id "
                f"{r['category_id']!r}, which is not a ground-truth category "
                f"{sorted(categories)}"
            )
        score = r.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
            raise MissingScoreError(
                f"{source}: result #{k} (image_id {img!r}) has no valid 'score' (got {score!r})"
            )
        h, w = image_sizes[img]
        rle = segmentation_to_rle(r["segmentation"], h, w,
                                  where=f"{source}: result #{k} (image_id {img!r})")
        rles, cls, sc = per[img]
        rles.append(rle)
        cls.append(int(r["category_id"]))
        sc.append(float(score))
    return {img: (rles, np.asarray(cls, np.int64), np.asarray(sc, np.float64))
            for img, (rles, cls, sc) in per.items()}


# --------------------------------------------------------------------------- protocols


def _coco_gt(gt_path: Path):
    try:
        coco = load_coco(str(gt_path))
    except FileNotFoundError:
        raise MetricsInputError(f"ground-truth file {gt_path} does not exist")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise MetricsInputError(f"ground-truth file {gt_path} is not a COCO instances JSON ({exc}); "
                                f"it is damaged or of another kind: export it again")
    try:
        sizes = {i: (int(im["height"]), int(im["width"])) for i, im in coco.imgs.items()}
        for a in coco.anns.values():  # checked here: pycocotools decodes them unchecked
            h, w = sizes[a["image_id"]]
            segmentation_to_rle(a["segmentation"], h, w, where=f"annotation {a.get('id')!r}")
            int(a["category_id"])
    except MetricsInputError as exc:
        raise MetricsInputError(f"ground-truth file {gt_path}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MetricsInputError(f"ground-truth file {gt_path} is not a COCO instances JSON "
                                f"(missing or malformed field {exc})") from None
    return coco, sizes


def _gt_of_image(coco, img_id: Any) -> tuple[list, np.ndarray, np.ndarray]:
    anns = coco.imgToAnns.get(img_id, [])
    rles = [coco.annToRLE(a) for a in anns]
    return (rles, np.asarray([a["category_id"] for a in anns], np.int64),
            np.asarray([bool(a.get("iscrowd", 0)) for a in anns]))


def evaluate_sds(gt_path: Path, results: list, *, fcis: bool = False,
                 per_class: bool = False, source: str = "predictions") -> dict[str, Any]:
    """AP^r at t = 0.1 ... 0.9 and AP^r_vol; crowd annotations are not instances (SDS has
    no void), so predictions on them are false positives."""
    coco, sizes = _coco_gt(gt_path)
    cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    preds = validate_results(results, sizes, set(cats), source)
    ev = SDSEvaluator("fcis" if fcis else "sds", classes=cats)
    empty = ([], np.zeros(0, np.int64), np.zeros(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyPredictionsWarning)  # already warned above
        for img_id in sorted(sizes):
            rles, cls, crowd = _gt_of_image(coco, img_id)
            keep = ~crowd
            gt_rles = [r for r, k in zip(rles, keep) if k]
            p_rles, p_cls, p_sc = preds.get(img_id, empty)
            ev.add_iou(img_id, iou_matrix(p_rles, gt_rles), cls[keep], p_cls, p_sc)
        table = ev.compute(VOL_THRESHOLDS)
    out: dict[str, Any] = {"protocol": "sds-fcis" if fcis else "sds"}
    out.update(table.summary())
    if per_class:
        df = table.to_frame(cats)
        out["per_class"] = {
            name: {col: (None if not np.isfinite(v) else float(v))
                   for col, v in row.items() if col.startswith("AP")}
            for name, row in df.iterrows()
        }
    return out


def evaluate_coco(gt_path: Path, results: list, *, per_class: bool = False,
                  source: str = "predictions") -> dict[str, Any]:
    coco, sizes = _coco_gt(gt_path)
    validate_results(results, sizes, set(coco.getCatIds()), source)
    stats = coco_segm_eval(coco, results, per_class=per_class)
    out: dict[str, Any] = {"protocol": "coco"}
    out.update({k: stats[k] for k in ("AP", "AP50", "AP75")})
    if per_class:
        out["per_class"] = stats["per_class"]
    return out


def _cityscapes_frames(gt_dir: Path) -> dict[str, Path]:
    files = sorted(gt_dir.rglob(f"*{CITYSCAPES_GT_SUFFIX}"))
    if not files:
        raise MetricsInputError(f"no *{CITYSCAPES_GT_SUFFIX} files under {gt_dir}")
    return {f.name[: -len(CITYSCAPES_GT_SUFFIX)]: f for f in files}


def _read_checked(read, path: Path, *args):
    """A data-layer reader whose :class:`DataError` becomes a :class:`MetricsInputError` (exit 2)."""
    from .data.errors import DataError

    try:
        return read(path, *args)
    except DataError as exc:
        raise MetricsInputError(str(exc)) from None


def read_cityscapes_instance_ids(path: Path) -> np.ndarray:
    """A ``*_gtFine_instanceIds.png``: 16-bit grey (an 8-bit one is refused), CRCs checked."""
    from .data.formats import read_png16

    return _read_checked(read_png16, path, "Cityscapes instanceIds PNG",
                         "instanceIds files are 16-bit (labelId * 1000 + k): re-extract gtFine_trainvaltest.zip.")


def _png_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` from a PNG's header, without decoding it."""
    from .data.formats import png_header

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MetricsInputError(f"{path}: cannot read ({exc})") from None
    w, h, _, _ = _read_checked(lambda p, d: png_header(p, d, "PNG"), path, data)
    return h, w


def read_cityscapes_results(pred_dir: Path, frames: dict[str, Path]) -> list[dict]:
    """Predictions in the cityscapesScripts format as a COCO results list (RLE masks).

    Each ``*.txt`` under ``pred_dir`` belongs to the GT frame whose name starts it
    (``frankfurt_000000_000294_leftImg8bit.txt`` or ``frankfurt_000000_000294.txt``); each
    line is ``<mask PNG relative to the txt> <label id> <score>``. A mask's non-zero pixels
    are the instance. A malformed line or mask raises :class:`PredictionFormatError`
    naming the file.
    """
    from .data.formats import read_label_png
    from .metrics.masks import encode

    txts = sorted(pred_dir.rglob("*.txt"))
    if not txts:
        raise PredictionFormatError(f"no *.txt files under {pred_dir}: expected the cityscapesScripts results "
                                    f"format (one <frame>.txt per frame: '<mask.png> <label id> <score>' lines)")
    results: list[dict] = []
    for txt in txts:
        frame = next((f for f in frames if txt.name == f"{f}.txt" or txt.name.startswith(f"{f}_")), None)
        if frame is None:
            raise PredictionFormatError(f"{txt}: no ground-truth frame of this name (frames are named like "
                                        f"{next(iter(frames))!r}); name the file <frame>.txt")
        try:
            lines = txt.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise PredictionFormatError(f"{txt}: not a text file ({exc}); it is damaged: write it again") from None
        for n, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts:
                continue
            where = f"{txt}, line {n}"
            if len(parts) != 3:
                raise PredictionFormatError(f"{where}: expected '<mask.png> <label id> <score>', got {line.strip()!r}")
            try:
                label, score = int(parts[1]), float(parts[2])
            except ValueError:
                raise PredictionFormatError(f"{where}: label id must be an integer and score a number, "
                                            f"got {parts[1]!r} {parts[2]!r}") from None
            mask_path = txt.parent / parts[0]
            try:
                mask = read_label_png(mask_path) != 0
            except FileNotFoundError:
                raise PredictionFormatError(f"{where}: mask {mask_path} does not exist") from None
            except Exception as exc:  # DataError: damaged or not a grey/palette PNG
                raise PredictionFormatError(f"{where}: {exc}") from None
            results.append({"image_id": frame, "category_id": label, "score": score,
                            "segmentation": encode(mask)[0]})
    return results


def evaluate_cityscapes(gt_path: Path, results: list | None, *, per_class: bool = False,
                        source: str = "predictions", pred_dir: Path | None = None) -> dict[str, Any]:
    if gt_path.is_dir():
        frames = _cityscapes_frames(gt_path)
        sizes = {k: _png_size(f) for k, f in frames.items()}  # reads the PNG headers only
        if pred_dir is not None:
            results, source = read_cityscapes_results(pred_dir, frames), str(pred_dir)
        # predictions of other Cityscapes labels are skipped, as by the reference
        preds = validate_results(results, sizes, set(range(-1, 34)), source)
        ev = CityscapesEvaluator()
        for k in sorted(frames):  # one frame in memory at a time
            r, c, s = preds.get(k, ([], [], []))
            ev.add_id_map(k, read_cityscapes_instance_ids(frames[k]), r, c, s)
    else:
        if pred_dir is not None:
            raise MetricsInputError(f"--pred {pred_dir} is a folder (Cityscapes txt + PNG results): then --gt "
                                    f"must be a folder of *{CITYSCAPES_GT_SUFFIX} files, not {gt_path}")
        coco, sizes = _coco_gt(gt_path)
        cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        preds = validate_results(results, sizes, set(cats), source)
        ev = CityscapesEvaluator(cats)
        for img_id in sorted(sizes):
            rles, cls, crowd = _gt_of_image(coco, img_id)
            r, c, s = preds.get(img_id, ([], [], []))
            ev.add(img_id, rles, cls, r, c, s, gt_is_group=crowd, image_size=sizes[img_id])
    res = ev.compute()
    out: dict[str, Any] = {"protocol": "cityscapes"}
    out.update(res.summary())
    if per_class:
        out["per_class"] = {
            name: {k: (None if not np.isfinite(v) else float(v)) for k, v in row.items()}
            for name, row in res.to_frame().iterrows()
        }
    return out


def evaluate_semantic(gt_dir: Path, pred_dir: Path, *, n_classes: int = 255,
                      ignore_index: int = 255, per_class: bool = False) -> dict[str, Any]:
    from .data.formats import read_label_png

    if not gt_dir.is_dir():
        raise MetricsInputError(f"--gt for semantic must be a folder of label PNGs: {gt_dir}")
    if not pred_dir.is_dir():
        raise MetricsInputError(f"--pred for semantic must be a folder of label PNGs: {pred_dir}")
    gts = sorted(gt_dir.rglob("*.png"))
    if not gts:
        raise MetricsInputError(f"no PNG files under {gt_dir}")
    ev = SemanticEvaluator(n_classes, ignore_index)
    for g in gts:
        rel = g.relative_to(gt_dir)
        p = pred_dir / rel
        if not p.is_file():
            raise MetricsInputError(f"no prediction {p} for ground truth {rel}")
        ev.add(_read_checked(read_label_png, g), _read_checked(read_label_png, p), image_id=str(rel))
    s = ev.compute()
    out: dict[str, Any] = {"protocol": "semantic", **s.as_dict()}
    if per_class:
        out["per_class_IoU"] = {str(c): float(v) for c, v in enumerate(s.per_class_iou)
                                if np.isfinite(v)}
    return out


def evaluate(gt: str | Path, pred: str | Path, protocol: str, *, per_class: bool = False,
             n_classes: int = 255) -> dict[str, Any]:
    """The CLI as a function: returns the JSON object as a dict."""
    gt, pred = Path(gt), Path(pred)
    if protocol not in PROTOCOL_CHOICES:
        raise ValueError(f"unknown protocol {protocol!r}: use one of {PROTOCOL_CHOICES}")
    if protocol == "semantic":
        return evaluate_semantic(gt, pred, n_classes=n_classes, per_class=per_class)
    if protocol == "cityscapes" and pred.is_dir():
        return evaluate_cityscapes(gt, None, per_class=per_class, pred_dir=pred)
    results = read_results(pred)
    if protocol in ("sds", "sds-fcis"):
        return evaluate_sds(gt, results, fcis=protocol == "sds-fcis", per_class=per_class, source=str(pred))
    if protocol == "coco":
        return evaluate_coco(gt, results, per_class=per_class, source=str(pred))
    return evaluate_cityscapes(gt, results, per_class=per_class, source=str(pred))


def _finite(obj: Any) -> Any:
    """NaN (a class without ground truth) becomes JSON ``null``, keeping the output strict."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m instseg_lib.evaluate",
        description="Score predictions with the evaluation protocols of the five papers.",
        epilog="Example: python -m instseg_lib.evaluate --gt instances_val.json "
               "--pred results.json --protocol sds",
    )
    p.add_argument("--gt", required=True, help="COCO instances JSON (or a folder, see docs)")
    p.add_argument("--pred", required=True,
                   help="COCO results JSON (folder for semantic; for cityscapes also a txt + PNG folder)")
    p.add_argument("--protocol", required=True, choices=PROTOCOL_CHOICES)
    p.add_argument("--per-class", action="store_true", help="add a per-class table")
    p.add_argument("--num-classes", type=int, default=255,
                   help="semantic only: number of classes (labels 0..N-1; default 255)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EmptyPredictionsWarning)
            out = evaluate(args.gt, args.pred, args.protocol, per_class=args.per_class,
                           n_classes=args.num_classes)
    except MetricsInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in caught:  # one plain line each, on stderr: stdout is the JSON only
        print(f"warning: {w.message}", file=sys.stderr)
    json.dump(_finite(out), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
