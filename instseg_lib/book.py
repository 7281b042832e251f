"""Execute the book's notebooks headless with papermill, then build it with Jupyter Book.

::

    python -m instseg_lib.book execute --profile cpu            # into book/notebooks/
    python -m instseg_lib.book execute --profile smoke --book-dir build/book-smoke
    python -m instseg_lib.book build --book-dir book [--strict]

The notebooks to run are the ``notebooks/<name>`` entries of ``book/_toc.yml``, in order,
with ``what_reproduced`` last because it collects the other notebooks' verdicts. Each runs
with ``profile`` injected into its ``parameters`` cell, and the executor adds a header cell
under it (profile badge and banner, :data:`HEADER_SOURCE`) and folds every code cell.
The wall time of every notebook and their sum go to ``<book-dir>/_build/timings.json``;
``--only`` re-times just the notebooks it names (and ``what_reproduced``, which reports the
times on the front page), keeping the others' times from the runs that last executed them.
A failing notebook stops the run with one line naming the notebook and the cell; the
executed copy keeps the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .experiments import atomic_write_bytes
from .paths import REPO_ROOT
from .profiles import ProfileDeviceError, UnknownProfileError, check_can_start, default_device, get_profile

BOOK_SRC = REPO_ROOT / "book"
NOTEBOOK_SRC = REPO_ROOT / "notebooks"
LAST = "what_reproduced"


class BookError(RuntimeError):
    """A one-line, user-facing failure of the book pipeline."""


def toc_pages(toc: Path = BOOK_SRC / "_toc.yml") -> list[str]:
    """Every page of the table of contents (``root`` and each ``file``), in toc order."""
    import yaml

    pages: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    pages.append(node[key].removesuffix(".ipynb"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(toc.read_text()))
    return pages


def toc_notebooks(toc: Path = BOOK_SRC / "_toc.yml") -> list[str]:
    """Notebook names listed in the table of contents, ``what_reproduced`` moved last."""
    names = [p.split("/", 1)[1] for p in toc_pages(toc) if p.startswith("notebooks/")]
    return [n for n in names if n != LAST] + ([LAST] if LAST in names else [])


def sync_book_sources(book_dir: Path) -> None:
    """Copy the book's hand-written sources (config, toc, pages, bib) to ``book_dir``."""
    book_dir = Path(book_dir).resolve()
    if book_dir == BOOK_SRC.resolve():
        return
    book_dir.mkdir(parents=True, exist_ok=True)
    for src in BOOK_SRC.iterdir():
        if src.is_file():
            shutil.copy2(src, book_dir / src.name)
        elif src.name not in {"_build", "notebooks"}:
            shutil.copytree(src, book_dir / src.name, dirs_exist_ok=True)


def _kernel_check(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise BookError(
            f"no Jupyter kernel named {kernel!r}: run `make setup` (installs ipykernel into .venv) "
            f"or pass --kernel NAME (see `jupyter kernelspec list`)"
        ) from None


#: Tag of the cell the executor adds under each page's parameters (badge, banner, display set-up).
HEADER_TAG = "instseg-header"
HEADER_SOURCE = ("# Added by instseg_lib.book at execution time: profile badge, banner, full-width tables.\n"
                 "from instseg_lib.papers.render import page_header\n"
                 "page_header(profile)")
_SHOWN_AS_IS = {"remove-cell", "remove-input", "hide-input", "hide-cell", "remove-output", "hide-output"}


def with_header(nb):
    """``nb`` with the header cell (badge and profile banner) right after its ``parameters`` cell.

    Papermill puts the injected parameters between the two, so the header sees the profile
    actually used. The notebook sources stay untouched; only the executed copy has the cell.
    """
    import nbformat

    idx = next((i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if idx is None or any(HEADER_TAG in c.metadata.get("tags", []) for c in nb.cells):
        return nb
    cell = nbformat.v4.new_code_cell(HEADER_SOURCE, metadata={"tags": [HEADER_TAG, "remove-input"]})
    cell["id"] = HEADER_TAG
    nb.cells.insert(idx + 1, cell)
    return nb


def tidy_executed(path: Path) -> None:
    """Drop stderr outputs, hide the parameters cells and fold the code of an executed notebook.

    The book never shows stderr (``nb_output_stderr: remove``), and whether a warning fires
    depends on whether a result was cached, so keeping it would make nbval's comparison
    of a re-run depend on the cache. Facts a reader needs are printed to stdout.
    Papermill keeps the template cell (``profile = "cpu"``) and adds the injected one with
    the value actually used; the book shows neither (``remove-cell``): the header cell below
    them prints the profile as a one-line badge. Every other code cell is folded
    (``hide-input``: the book shows its outputs and a toggle for its source), unless it
    already carries a remove/hide tag.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = False
    injected = any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    for cell in nb.cells:
        outs = cell.get("outputs", [])
        kept = [o for o in outs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        if len(kept) != len(outs):
            cell["outputs"], changed = kept, True
        tags = cell.metadata.get("tags", [])
        if cell.cell_type != "code":
            continue
        if injected and ("parameters" in tags or "injected-parameters" in tags):
            want = "remove-cell"
        elif HEADER_TAG in tags or _SHOWN_AS_IS & set(tags):
            continue
        else:
            want = "hide-input"
        if want not in tags:
            cell.metadata["tags"] = [*tags, want]
            changed = True
    if changed:
        nbformat.write(nb, path)


def read_timings(path: Path, profile: str) -> dict[str, float]:
    """The per-notebook times already recorded in ``path`` for ``profile`` (``{}`` if none)."""
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(old, dict) or old.get("profile") != profile:
        return {}
    return {str(k): float(v) for k, v in (old.get("notebooks") or {}).items()}


def timings_record(profile: str, notebooks: dict[str, float], rerun: list[str], partial: bool,
                   running: str | None = None, run_seconds: float | None = None) -> dict:
    """What ``timings.json`` holds: each notebook's latest time, their sum, and how fresh they are.

    ``notebooks`` maps every notebook with a recorded time to its latest one; ``rerun`` names
    those timed by this run (all of them after a full run; only the ``--only`` ones after a
    partial run, the others' times come from earlier runs). ``total_seconds`` is always the
    sum of the recorded times, so a partial run updates just its own entries. ``complete``:
    every notebook of the toc has a time and none is running.
    """
    toc = toc_notebooks()
    shown = {k: round(v, 2) for k, v in notebooks.items() if k != running}
    return {"profile": profile, "device": default_device(), "notebooks": shown,
            "total_seconds": round(sum(shown.values()), 2), "rerun": [n for n in rerun if n in shown],
            "partial": partial, "running": running,
            "missing": [n for n in toc if n not in shown and n != running],
            "complete": running is None and all(n in shown for n in toc),
            **({"run_seconds": round(run_seconds, 2)} if run_seconds is not None else {})}


def _write_timings(path: Path, record: dict) -> None:
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())


def execute(profile: str, book_dir: Path = BOOK_SRC, only: list[str] | None = None,
            kernel: str = "python3") -> dict:
    """Run every notebook of the toc with papermill; return and write the timings.

    The gpu profile without CUDA is refused first (:func:`~instseg_lib.profiles.check_can_start`).
    With ``only``, just those notebooks run, and ``what_reproduced`` after them (it collects
    their verdicts and the wall time for the front page). Their times replace their entries in
    ``timings.json``; the other notebooks keep the times of the run that last executed them.
    """
    import nbformat
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    get_profile(profile)  # fails early, in one line, on an unknown profile
    check_can_start(profile)  # and on the gpu profile without a GPU, before any kernel starts
    _kernel_check(kernel)
    book_dir = Path(book_dir)
    sync_book_sources(book_dir)
    names = toc_notebooks()
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise BookError(f"not in book/_toc.yml: {', '.join(unknown)}; known: {', '.join(names)}")
        wanted = set(only) | ({LAST} & set(names))
        if LAST not in only and LAST in names:
            print(f"{LAST} runs too: it collects the verdicts and the wall time the front page shows", flush=True)
        names = [n for n in names if n in wanted]
    out_dir = book_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    # Deterministic notebook outputs: no progress bars inside the kernels.
    os.environ["INSTSEG_PROGRESS"] = "0"
    os.environ["PROFILE"] = profile
    t_all = time.perf_counter()
    path = book_dir / "_build" / "timings.json"
    # The last page (what_reproduced) reports the build's wall time so far from this file.
    os.environ["INSTSEG_BOOK_TIMINGS"] = str(path.resolve())
    # A partial run keeps the other notebooks' times; a full run times every notebook afresh.
    recorded = read_timings(path, profile) if only else {}
    timings: dict[str, float] = {}
    partial = bool(only)
    for i, name in enumerate(names, 1):
        src = NOTEBOOK_SRC / f"{name}.ipynb"
        if not src.exists():
            raise BookError(f"book/_toc.yml lists notebooks/{name} but {src} does not exist")
        print(f"[{i}/{len(names)}] {name} (profile {profile}) ...", flush=True)
        _write_timings(path, timings_record(profile, {**recorded, **timings}, list(timings), partial, running=name))
        os.environ["INSTSEG_PAGE"] = f"notebooks/{name}"
        t0 = time.perf_counter()
        try:
            nb = with_header(nbformat.read(src, as_version=4))
            pm.execute_notebook(nb, str(out_dir / f"{name}.ipynb"), parameters={"profile": profile},
                                kernel_name=kernel, cwd=str(NOTEBOOK_SRC), progress_bar=sys.stderr.isatty(),
                                report_mode=False)
        except PapermillExecutionError as exc:
            raise BookError(
                f"notebook notebooks/{name}.ipynb failed in cell {exc.cell_index} "
                f"(execution count {exc.exec_count}): {exc.ename}: {exc.evalue.splitlines()[0] if exc.evalue else ''}"
                f" -- the traceback is in {out_dir / (name + '.ipynb')}"
            ) from None
        tidy_executed(out_dir / f"{name}.ipynb")
        timings[name] = round(time.perf_counter() - t0, 2)
        print(f"      {name}: {timings[name]:.1f} s", flush=True)
    os.environ.pop("INSTSEG_PAGE", None)
    record = timings_record(profile, {**recorded, **timings}, list(timings), partial,
                            run_seconds=time.perf_counter() - t_all)
    _write_timings(path, record)
    kept = len(record["notebooks"]) - len(timings)
    print(f"notebooks: {record['total_seconds']:.1f} s in total"
          + (f" ({len(timings)} re-timed now, {kept} from earlier runs)" if partial else "")
          + f"; timings in {path}", flush=True)
    return record


def build(book_dir: Path = BOOK_SRC, strict: bool = False) -> Path:
    """``jupyter-book build`` (``-W`` when strict); returns the page to open."""
    book_dir = Path(book_dir)
    missing = [n for n in toc_notebooks() if not (book_dir / "notebooks" / f"{n}.ipynb").exists()]
    if missing:
        raise BookError(f"notebooks not executed yet: {', '.join(missing)}; "
                        f"run `python -m instseg_lib.book execute --book-dir {book_dir}` first")
    sync_book_sources(book_dir)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book_dir), "--path-output", str(book_dir)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, text=True, capture_output=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-6000:])
        raise BookError(f"jupyter-book build of {book_dir} failed (exit {proc.returncode}); see the log above")
    index = (book_dir / "_build" / "html" / "index.html").resolve()
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m instseg_lib.book", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("execute", help="run the notebooks with papermill")
    ex.add_argument("--profile", default=os.environ.get("PROFILE") or "cpu")
    ex.add_argument("--book-dir", type=Path, default=BOOK_SRC)
    ex.add_argument("--only", nargs="*", help="notebook names (default: all in the toc)")
    ex.add_argument("--kernel", default="python3")
    bd = sub.add_parser("build", help="build the HTML with Jupyter Book")
    bd.add_argument("--book-dir", type=Path, default=BOOK_SRC)
    bd.add_argument("--strict", action="store_true", help="warnings are errors")
    sub.add_parser("list", help="print the notebooks of the toc in execution order")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "execute":
            execute(args.profile, args.book_dir, args.only, args.kernel)
        elif args.cmd == "build":
            index = build(args.book_dir, args.strict)
            print(f"book built: open file://{index}")
        else:
            print("\n".join(toc_notebooks()))
    except (BookError, UnknownProfileError, ProfileDeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UnknownProfileError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
