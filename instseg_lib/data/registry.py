"""``open_dataset``: one entry point for the real datasets and the synthetic twin."""

from __future__ import annotations

import hashlib

import os
from pathlib import Path

from ..paths import data_root, data_source, real_data_root, real_dataset_root, results_dir
from ..profiles import Profile, get_profile
from .base import DATA_SCRIPTS, SegDataset
from .errors import MissingDatasetError
from .synthetic import is_complete, read_marker, twin_root

NAMES = ("voc", "sbd", "cityscapes", "context", "coco", "boxes")


def _reader_class(name: str) -> type[SegDataset]:
    from .boxes import BoxesDataset
    from .cityscapes import CityscapesDataset
    from .coco import COCODataset
    from .context import ContextDataset
    from .sbd import SBDDataset
    from .voc import VOCDataset

    table = {"voc": VOCDataset, "sbd": SBDDataset, "cityscapes": CityscapesDataset, "context": ContextDataset,
             "coco": COCODataset, "boxes": BoxesDataset}
    if name not in table:
        raise ValueError(f"unknown dataset {name!r}; use one of {', '.join(NAMES)}")
    return table[name]


def open_dataset(name: str, split: str, root: str | Path | None = None, profile: str | Profile | None = None,
                 transform=None, **kwargs) -> SegDataset:
    """A torch ``Dataset`` of :class:`~.sample.Sample` for ``name`` in ``voc, sbd, cityscapes,
    context, coco, boxes``.

    ``root=None`` reads what ``INSTSEG_DATASETS`` selects (:func:`instseg_lib.paths.data_source`):

    - ``twin`` (the default): the synthetic twin at ``data_root()/<profile>/<name>`` (profile:
      ``$PROFILE``, else ``cpu``); a missing or incomplete twin raises
      :class:`~.errors.MissingDatasetError` naming the generator command.
    - ``real``: the real dataset at ``real_dataset_root(name)`` (``INSTSEG_REAL_ROOT/<name>``);
      a missing one names its ``data_scripts`` command. At the smoke and cpu profiles every
      sample is resized to the profile's short side first (:func:`real_image_size`); ``transform``
      then applies to the resized sample.

    With a ``root``, the real dataset's layout is read there; a missing one names its
    ``data_scripts`` command, a wrong layout what was looked for.
    """
    cls = _reader_class(name)
    if root is None and data_source() == "real":
        prof = profile if isinstance(profile, Profile) else get_profile(profile)
        root = real_dataset_root(name)
        if not root.is_dir():
            raise MissingDatasetError(
                f"{name}: INSTSEG_DATASETS=real reads the real dataset at {root}, which does not exist. Download "
                f"and arrange it with `{DATA_SCRIPTS[name].format(root=root)}` (or point INSTSEG_REAL_ROOT at the "
                f"folder that holds {name}/, or INSTSEG_{name.upper()}_ROOT at the dataset itself), or unset "
                f"INSTSEG_DATASETS to use the synthetic twin."
            )
        size = real_image_size(prof)
        if size is not None:
            from .transforms import eval_transforms

            resize = eval_transforms(prof, resize=True)
            transform = resize if transform is None else _Then(resize, transform)
    elif root is None:
        prof = profile if isinstance(profile, Profile) else get_profile(profile)
        root = twin_root(name, prof)
        if not is_complete(root):
            state = "is incomplete (an interrupted generation?)" if root.exists() else "does not exist"
            raise MissingDatasetError(
                f"the synthetic twin of {name!r} for profile {prof.name!r} at {root} {state}. Generate it with "
                f"`python -m instseg_lib.data.synthetic --preset {name} --profile {prof.name} --out {root}` "
                f"(or every preset: `python -m instseg_lib.data.synthetic --all --profile {prof.name}`, "
                f"which `make data PROFILE={prof.name}` runs)."
            )
    return cls(root, split, transform=transform, **kwargs)


def real_image_size(profile: str | Profile | None = None) -> int | None:
    """The short side (px) at which ``open_dataset`` serves real images under ``profile``; ``None``: native.

    It is the profile's ``real_short_side``. The gpu profile reads them at native resolution, as the
    papers do. The smoke and cpu profiles
    size their nets, training crops and budgets for images of ``image_size`` (the twin's), so real
    images are resized to that short side (bilinear for the image, nearest for the label maps,
    boxes scaled): a 112 px crop of a 500 px VOC image would show a net a fragment of an object,
    and evaluating at native size would cost tens of times the twin's time (Hough grouping of one
    500 x 375 image took two minutes at the smoke profile).
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return prof.real_short_side


class _Then:
    """``second(first(sample))``; a class, not a lambda, so a dataset stays picklable (DataLoader workers)."""

    def __init__(self, first, second) -> None:
        self.first, self.second = first, second

    def __call__(self, sample):
        return self.second(self.first(sample))


#: How captions name each dataset: the real one, and the twin (the twin's words are those the
#: book's captions always used).
REAL_LABELS = {"voc": "PASCAL VOC 2012", "sbd": "SBD", "cityscapes": "Cityscapes", "context": "PASCAL-Context",
               "coco": "COCO 2017", "boxes": "PASCAL VOC 2007 boxes"}
TWIN_LABELS = {"voc": "VOC twin", "sbd": "SBD twin", "cityscapes": "Cityscapes twin", "context": "Context twin",
               "coco": "COCO twin", "boxes": "boxes twin"}


def dataset_label(name: str, split: str | None = None) -> str:
    """The dataset's name as a caption says it, for the active source: ``dataset_label("voc", "val")``
    is ``"VOC twin val"`` on the twin and ``"PASCAL VOC 2012 val"`` on the real data."""
    table = REAL_LABELS if data_source() == "real" else TWIN_LABELS
    if name not in table:
        raise ValueError(f"unknown dataset {name!r}; use one of {', '.join(NAMES)}")
    return f"{table[name]} {split}" if split else table[name]


def data_source_summary(profile: str | Profile | None = None) -> str:
    """One line for a notebook to print: which datasets ``open_dataset`` reads, and from where."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if data_source() == "real":
        return (f"datasets: the real ones under {real_data_root()} (INSTSEG_DATASETS=real), {prof.name} profile; "
                f"results in {results_dir(prof.name)}")
    return (f"datasets: the synthetic twin under {data_root() / prof.name}, {prof.name} profile; results in "
            f"{results_dir(prof.name)} (INSTSEG_DATASETS=real reads the real datasets under INSTSEG_REAL_ROOT)")


def dataset_fingerprint(root: str | Path) -> str:
    """A short stable hash of a dataset folder, recorded in experiment provenance.

    For a synthetic twin it is the content fingerprint stored in its completion marker
    (sha256 over every file's bytes). For a real dataset (no marker) it hashes the sorted
    list of relative paths and sizes, which is cheap on 100k-file datasets and changes when
    files are added, removed or replaced by ones of another size. Symlinked folders are
    followed: a dataset assembled from links (``JPEGImages -> /disk2/...``) is fingerprinted by
    what it holds, not by its links.
    """
    root = Path(root).expanduser()
    m = read_marker(root)
    if m and "fingerprint" in m:
        return str(m["fingerprint"])
    if not root.is_dir():
        raise MissingDatasetError(f"{root}: no such dataset folder to fingerprint")
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            h.update(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


