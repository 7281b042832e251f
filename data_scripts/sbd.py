"""SBD (Hariharan et al. 2011): ``benchmark.tgz`` and the ``train_noval.txt`` split.

    python -m data_scripts.sbd --root ~/datasets/sbd     # -> ROOT/benchmark_RELEASE/dataset

``train_noval.txt`` is SBD train without the VOC 2012 val images (the usual 10,582-image
"trainaug" set is SBD train_noval + VOC 2012 train); it is put next to train.txt/val.txt.
"""

from __future__ import annotations

import shutil

from data_scripts.common import Resource, check_reader, ensure, extract, finish, parser, run, verify

BENCHMARK = Resource("http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",
                     "benchmark.tgz", "82b4d87ceb2ed10f6038a1cba92111cb")
TRAIN_NOVAL = Resource("http://home.bharathh.info/pubs/codes/SBD/train_noval.txt", "train_noval.txt",
                       "79bff800c5f0b1ec6b21080a3c066722")


def main(argv=None, fetch=None) -> int:
    ap = parser("sbd", __doc__.split("\n\n")[0])
    ap.add_argument("--no-train-noval", action="store_true", help="skip the train_noval.txt split")
    a = ap.parse_args(argv)
    dl = a.downloads or a.root / "downloads"
    kw = {"fetch": fetch} if fetch else {}
    res = [BENCHMARK] + ([] if a.no_train_noval else [TRAIN_NOVAL])
    if a.verify_only:
        for r in res:
            verify(dl / r.filename, r)
            print(f"ok: {dl / r.filename}")
        return 0
    tgz = ensure(BENCHMARK, dl, **kw)
    extract(tgz, a.root)
    if not a.no_train_noval:
        split = ensure(TRAIN_NOVAL, dl, **kw)
        shutil.copyfile(split, a.root / "benchmark_RELEASE" / "dataset" / "train_noval.txt")
    finish([tgz], a.keep_archives)
    check_reader("sbd", a.root, "train")
    return 0


if __name__ == "__main__":
    run(main)
