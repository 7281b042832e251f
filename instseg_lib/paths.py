"""Where the project keeps data, results and the real-data fixtures.

Every location can be moved with an environment variable, so a user points the book at
their own disks without editing code.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root when the library is used from a checkout (``pip install -e .``).
REPO_ROOT = Path(__file__).resolve().parents[1]


def _root(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def data_root() -> Path:
    """Root of generated synthetic datasets (``INSTSEG_DATA``, default ``<repo>/data``)."""
    return _root("INSTSEG_DATA", REPO_ROOT / "data")


def results_root() -> Path:
    """Root of cached experiment results (``INSTSEG_RESULTS``, default ``<repo>/results``)."""
    return _root("INSTSEG_RESULTS", REPO_ROOT / "results")


#: What ``open_dataset(name, split)`` reads when no ``root`` is given (``INSTSEG_DATASETS``).
DATA_SOURCES = ("twin", "real")


def data_source() -> str:
    """``"twin"`` (the default: the synthetic twin under ``data_root()``) or ``"real"`` (the real
    datasets under :func:`real_data_root`), from ``INSTSEG_DATASETS``.

    Read at every call, not at import, so a notebook or a test can switch it.
    """
    value = (os.environ.get("INSTSEG_DATASETS") or "twin").strip().lower()
    if value not in DATA_SOURCES:
        raise ValueError(f"INSTSEG_DATASETS={value!r}: use 'twin' (the synthetic twin, the default) or 'real' "
                         f"(the real datasets under INSTSEG_REAL_ROOT, default {data_root() / 'real'})")
    return value


def real_data_root() -> Path:
    """Root of the real datasets (``INSTSEG_REAL_ROOT``, default ``data_root()/real``): one folder
    per dataset name (``voc``, ``sbd``, ``cityscapes``, ``context``, ``coco``, ``boxes``), each
    in the layout its ``data_scripts`` command arranges (``data_scripts/README.md``)."""
    return _root("INSTSEG_REAL_ROOT", data_root() / "real")


def real_dataset_root(name: str) -> Path:
    """Where the real dataset ``name`` lives: ``INSTSEG_<NAME>_ROOT``, else ``real_data_root()/<name>``.

    The data scripts download into the same place by default, so what they fetch is what
    ``INSTSEG_DATASETS=real`` reads.
    """
    return _root(f"INSTSEG_{name.upper()}_ROOT", real_data_root() / name)


def real_root_overrides() -> dict[str, str]:
    """The per-dataset ``INSTSEG_<NAME>_ROOT`` variables that are set (recorded in provenance)."""
    names = ("voc", "sbd", "cityscapes", "context", "coco", "boxes")
    return {n: str(real_dataset_root(n)) for n in names if os.environ.get(f"INSTSEG_{n.upper()}_ROOT")}


def results_dir(profile: str) -> Path:
    """The results cache of one profile: ``results_root()/<profile>`` on the twin and
    ``results_root()/<profile>-real`` on the real datasets.

    The one place where the data source enters the cache: a twin result is never served to a
    real-data run or the other way round, and the twin's paths (and config hashes) are those
    they always were.
    """
    return results_root() / (profile if data_source() == "twin" else f"{profile}-real")


def data_identity() -> tuple[str, ...]:
    """What ``open_dataset(name, split)`` reads right now, as a hashable key: the source and its
    root(s). In-process caches of anything computed from the data (templates, score maps) add it
    to their keys, so switching ``INSTSEG_DATASETS`` or a root mid-process never reuses them."""
    if data_source() == "twin":
        return ("twin", str(data_root()))
    return ("real", str(real_data_root()), *sorted(f"{k}={v}" for k, v in real_root_overrides().items()))


def realdata_root() -> Path | None:
    """The folder of genuine dataset files used by reader tests, or ``None`` when absent.

    It lives at ``../shared/realdata`` beside the checkout on the team's machines and in
    CI (``INSTSEG_REALDATA`` overrides). Users do not have it; tests skip without it.
    """
    path = _root("INSTSEG_REALDATA", REPO_ROOT.parent / "shared" / "realdata")
    return path if path.is_dir() else None


def papers_text_root() -> Path | None:
    """The folder of the five papers' texts (``../shared/papers``), or ``None``."""
    path = _root("INSTSEG_PAPERS", REPO_ROOT.parent / "shared" / "papers")
    return path if path.is_dir() else None
