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
