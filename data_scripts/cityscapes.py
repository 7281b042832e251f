"""Cityscapes fine annotations: a manual download (login), then verify and arrange.

Cityscapes requires an account, so this script cannot fetch it. The manual step:

1. Register / log in at https://www.cityscapes-dataset.com/login/ and accept the terms.
2. Download ``gtFine_trainvaltest.zip`` (packageID=1, 241 MB) and
   ``leftImg8bit_trainvaltest.zip`` (packageID=3, 11 GB) from
   https://www.cityscapes-dataset.com/downloads/ into one folder ARCHIVES
   (or, with the ``cityscapesscripts`` package: ``csDownload -d ARCHIVES gtFine_trainvaltest.zip
   leftImg8bit_trainvaltest.zip``, which asks for the login).
3. ``python -m data_scripts.cityscapes --archives ARCHIVES --root ~/datasets/cityscapes``

The script verifies both MD5s (as published on the download page), extracts them into
ROOT/{leftImg8bit,gtFine}, and checks the image counts (2,975 train, 500 val, 1,525 test).
A ROOT that already holds the extracted folders is verified without archives.
"""

from __future__ import annotations

from pathlib import Path

from data_scripts.common import Resource, check_reader, extract, finish, parser, run, verify
from instseg_lib.data.errors import MissingDatasetError

PACKAGES = [
    Resource("https://www.cityscapes-dataset.com/file-handling/?packageID=1", "gtFine_trainvaltest.zip",
             "4237c19de34c8a376e9ba46b495d6f66", note="241 MB"),
    Resource("https://www.cityscapes-dataset.com/file-handling/?packageID=3", "leftImg8bit_trainvaltest.zip",
             "0a6e97e94b616a514066c9e2adb0c97f", note="11 GB"),
]
EXPECTED = {"train": 2975, "val": 500, "test": 1525}
MANUAL = "\n\n".join(__doc__.split("\n\n")[1:3])


def count_layout(root: Path) -> dict[str, int]:
    return {s: sum(1 for _ in (root / "leftImg8bit" / s).glob("*/*_leftImg8bit.png")) for s in EXPECTED}


def check_layout(root: Path, strict: bool = True) -> dict[str, int]:
    counts = count_layout(root)
    for s, n in counts.items():
        gt = sum(1 for _ in (root / "gtFine" / s).glob("*/*_gtFine_instanceIds.png"))
        if n != gt:
            raise MissingDatasetError(f"{root}/gtFine/{s}: {gt} instanceIds PNGs for {n} images; extract "
                                      f"gtFine_trainvaltest.zip into {root}")
        if strict and n != EXPECTED[s]:
            raise MissingDatasetError(f"{root}/leftImg8bit/{s}: {n} images, expected {EXPECTED[s]}; the extraction "
                                      f"is incomplete: delete it and run this command again")
    return counts


def main(argv=None) -> int:
    ap = parser("cityscapes", __doc__.split("\n\n")[0])
    ap.add_argument("--archives", type=Path, default=None, help="folder with the two downloaded zips")
    a = ap.parse_args(argv)
    archives_dir = a.archives or a.downloads or a.root / "downloads"
    if (a.root / "leftImg8bit").is_dir() and (a.root / "gtFine").is_dir() and not a.archives:
        print(f"found an extracted Cityscapes under {a.root}: {check_layout(a.root)}")
        check_reader("cityscapes", a.root, "val")
        return 0
    missing = [r for r in PACKAGES if not (archives_dir / r.filename).is_file()]
    if missing:
        names = ", ".join(f"{r.filename} ({r.note}, {r.url})" for r in missing)
        raise MissingDatasetError(f"Cityscapes archives not found in {archives_dir}: {names}.\n\n{MANUAL}")
    paths = []
    for r in PACKAGES:
        p = archives_dir / r.filename
        print(f"verifying {p} ...", flush=True)
        verify(p, r)
        paths.append(p)
    if a.verify_only:
        print("ok: both archives match their published MD5")
        return 0
    for p in paths:
        extract(p, a.root)
    print(f"image counts: {check_layout(a.root)}")
    finish(paths, a.keep_archives)
    check_reader("cityscapes", a.root, "val")
    return 0


if __name__ == "__main__":
    run(main)
