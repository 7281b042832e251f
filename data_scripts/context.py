"""PASCAL-Context (Mottaghi et al. 2014): VOC 2010 images + the official full annotation,
converted to the 59-class + background PNG layout that ``instseg_lib`` reads.

    python -m data_scripts.context --root ~/datasets/context   # -> ROOT/VOCdevkit/VOC2010

The official ``trainval.tar.gz`` holds one ``.mat`` per image with a ``LabelMap`` over the
459 full classes. The 59 frequent classes are the label ids in :data:`CONTEXT59_IDS` (the
fixed mapping used by the Detail API, PyTorch-Encoding and MMSegmentation); every other
label becomes 0 = background. Written: ``SegmentationClassContext/<id>.png`` (grey PNG,
0..59) and ``ImageSets/SegmentationContext/{train,val}.txt`` (the VOC 2010 Main train/val
split restricted to annotated images: 4,998 / 5,105).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_scripts.common import Resource, check_reader, ensure, extract, finish, parser, run, verify
from data_scripts.voc import RESOURCES as VOC_RESOURCES
from instseg_lib.data.errors import MissingDatasetError

CONTEXT_TRAINVAL = Resource("https://cs.stanford.edu/~roozbeh/pascal-context/trainval.tar.gz", "trainval.tar.gz",
                            "df034edb2c12aa7d33b42b20bb1796e3")
#: Full-label ids of background + the 59 classes, sorted: position = class id in CONTEXT_CLASSES.
CONTEXT59_IDS = (0, 2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104, 105, 113,
                 115, 144, 158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260, 284, 295, 296, 308, 324, 326, 347,
                 349, 354, 355, 360, 366, 368, 397, 415, 416, 420, 424, 427, 440, 445, 454, 458)


def label_lut(max_id: int = 1024) -> np.ndarray:
    lut = np.zeros(max_id + 1, np.uint8)
    for k, full in enumerate(CONTEXT59_IDS):
        lut[full] = k
    return lut


def convert(voc2010: Path, mat_dir: Path) -> dict[str, int]:
    """Write 60-label PNGs for every ``<id>.mat`` in ``mat_dir`` and the split files."""
    from instseg_lib.data.formats import encode_png
    from scipy import io as sio

    out = voc2010 / "SegmentationClassContext"
    out.mkdir(parents=True, exist_ok=True)
    lut = label_lut()
    done = set()
    for mat in sorted(mat_dir.glob("*.mat")):
        try:
            lm = np.asarray(sio.loadmat(str(mat))["LabelMap"])
        except Exception as err:
            from instseg_lib.data.errors import corrupt
            raise corrupt(mat, "PASCAL-Context .mat (LabelMap)", err) from err
        if lm.max(initial=0) >= len(lut):
            raise MissingDatasetError(f"{mat}: LabelMap value {int(lm.max())} beyond the 459 Context labels")
        (out / f"{mat.stem}.png").write_bytes(encode_png(lut[lm.astype(np.int64)]))
        done.add(mat.stem)
    counts = {}
    sets = voc2010 / "ImageSets" / "SegmentationContext"
    sets.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        src = voc2010 / "ImageSets" / "Main" / f"{split}.txt"
        if not src.is_file():
            raise MissingDatasetError(f"{src} is missing: the VOC 2010 trainval archive is not extracted under {voc2010.parent.parent}")
        ids = [i for i in src.read_text().split() if i in done]
        (sets / f"{split}.txt").write_text("\n".join(ids) + "\n")
        counts[split] = len(ids)
    return counts


def find_mat_dir(root: Path) -> Path:
    cands = sorted({p.parent for p in root.rglob("*.mat")}, key=lambda d: -sum(1 for _ in d.glob("*.mat")))
    if not cands:
        raise MissingDatasetError(f"no PASCAL-Context .mat files under {root}; extract {CONTEXT_TRAINVAL.filename} there")
    return cands[0]


def main(argv=None, fetch=None) -> int:
    ap = parser("context", __doc__.split("\n\n")[0])
    a = ap.parse_args(argv)
    dl = a.downloads or a.root / "downloads"
    kw = {"fetch": fetch} if fetch else {}
    res = VOC_RESOURCES["2010"] + [CONTEXT_TRAINVAL]
    if a.verify_only:
        for r in res:
            verify(dl / r.filename, r)
            print(f"ok: {dl / r.filename}")
        return 0
    archives = [ensure(r, dl, **kw) for r in res]
    extract(archives[0], a.root)
    raw = a.root / "context_raw"
    extract(archives[1], raw)
    counts = convert(a.root / "VOCdevkit" / "VOC2010", find_mat_dir(raw))
    print(f"converted: {counts}")
    finish(archives, a.keep_archives)
    check_reader("context", a.root, "val")
    return 0


if __name__ == "__main__":
    run(main)
