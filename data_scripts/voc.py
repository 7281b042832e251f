"""PASCAL VOC 2012 trainval (segmentation) and, with ``--year 2007``, VOC 2007 (BoxSup's boxes).

    python -m data_scripts.voc --root ~/datasets/voc            # -> ROOT/VOCdevkit/VOC2012
    python -m data_scripts.voc --year 2007 --root ~/datasets/voc07   # default root: $INSTSEG_REAL_ROOT/boxes

Checksums: the MD5s published with the archives (also pinned by torchvision).
"""

from __future__ import annotations

from data_scripts.common import Resource, check_reader, default_root, ensure, extract, finish, parser, run, verify

RESOURCES = {
    "2012": [Resource("http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                      "VOCtrainval_11-May-2012.tar", "6cd6e144f989b92b3379bac3b3de84fd")],
    "2007": [Resource("http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
                      "VOCtrainval_06-Nov-2007.tar", "c52e279531787c972589f7e41ab4ae64"),
             Resource("http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
                      "VOCtest_06-Nov-2007.tar", "b6e924de25625d8de591ea690078ad9f")],
    "2010": [Resource("http://host.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar",
                      "VOCtrainval_03-May-2010.tar", "da459979d0c395079b5c75ee67908abb")],
}


def main(argv=None, fetch=None) -> int:
    ap = parser("voc", __doc__.split("\n\n")[0])
    ap.add_argument("--year", choices=("2012", "2007"), default="2012")
    ap.set_defaults(root=None)
    a = ap.parse_args(argv)
    # VOC 2007 is BoxSup's box set: by default it goes where open_dataset("boxes") reads it
    a.root = a.root or default_root("boxes" if a.year == "2007" else "voc")
    dl = a.downloads or a.root / "downloads"
    kw = {"fetch": fetch} if fetch else {}
    if a.verify_only:
        for r in RESOURCES[a.year]:
            verify(dl / r.filename, r)
            print(f"ok: {dl / r.filename}")
        return 0
    archives = [ensure(r, dl, **kw) for r in RESOURCES[a.year]]
    for arc in archives:
        extract(arc, a.root)
    finish(archives, a.keep_archives)
    if a.year == "2012":
        check_reader("voc", a.root, "train")
    else:
        check_reader("boxes", a.root, "trainval")
    return 0


if __name__ == "__main__":
    run(main)
