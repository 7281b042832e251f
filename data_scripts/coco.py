"""COCO 2017 images and instance annotations (read restricted to the 20 VOC classes).

    python -m data_scripts.coco --root ~/datasets/coco                # train + val (19 GB)
    python -m data_scripts.coco --root ~/datasets/coco --splits val   # val only (0.8 GB)

Layout: ROOT/{train2017,val2017}/*.jpg and ROOT/annotations/instances_{train,val}2017.json.
MD5s as published with the archives (widely pinned, e.g. by the MLPerf and torchvision
reference scripts); sizes from the server.
"""

from __future__ import annotations

from data_scripts.common import Resource, check_reader, ensure, extract, finish, parser, run, verify

IMAGES = {
    "train": Resource("http://images.cocodataset.org/zips/train2017.zip", "train2017.zip",
                      "cced6f7f71b7629ddf16f17bbcfab6b2", 19336861798),
    "val": Resource("http://images.cocodataset.org/zips/val2017.zip", "val2017.zip",
                    "442b8da7639aecaf257c1dceb8ba8c80", 815585330),
}
ANNOTATIONS = Resource("http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                       "annotations_trainval2017.zip", "f4bbac642086de4f52a3fdda2de5fa2c", 252907541)


def main(argv=None, fetch=None) -> int:
    ap = parser("coco", __doc__.split("\n\n")[0])
    ap.add_argument("--splits", nargs="+", choices=("train", "val"), default=["train", "val"])
    a = ap.parse_args(argv)
    dl = a.downloads or a.root / "downloads"
    kw = {"fetch": fetch} if fetch else {}
    res = [ANNOTATIONS] + [IMAGES[s] for s in a.splits]
    if a.verify_only:
        for r in res:
            verify(dl / r.filename, r)
            print(f"ok: {dl / r.filename}")
        return 0
    archives = [ensure(r, dl, **kw) for r in res]
    for arc in archives:
        extract(arc, a.root)
    finish(archives, a.keep_archives)
    check_reader("coco", a.root, a.splits[-1])
    return 0


if __name__ == "__main__":
    run(main)
