"""The book executor's contract: order, one-line errors, and the failing cell named."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from instseg_lib import book


def test_toc_lists_every_notebook_and_what_reproduced_runs_last():
    names = book.toc_notebooks()
    assert names[-1] == "what_reproduced"
    assert {"wu2016_overview", "arnab2017_overview", "liang2015_overview", "fathi2017_overview",
            "dai2015_overview", "paper_tables", "data_twin", "how_we_measure"} <= set(names)
    for n in names:
        assert (book.NOTEBOOK_SRC / f"{n}.ipynb").exists(), n


def test_every_notebook_starts_with_a_parameters_cell_holding_only_the_profile():
    for n in book.toc_notebooks():
        nb = nbformat.read(book.NOTEBOOK_SRC / f"{n}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), n
        assert code[0].source.strip() == 'profile = "cpu"', n
        # Notebooks never branch on the profile name (they read the profile table).
        for c in code[1:]:
            assert "profile ==" not in c.source and "profile in (" not in c.source, n


def test_every_notebook_is_valid_nbformat_with_unique_cell_ids():
    """Cells without ids are a warning today and an error in future nbformat versions."""
    for n in book.toc_notebooks():
        raw = json.loads((book.NOTEBOOK_SRC / f"{n}.ipynb").read_text())
        ids = [c.get("id") for c in raw["cells"]]
        assert all(ids) and len(set(ids)) == len(ids), n
        nbformat.validate(nbformat.reads(json.dumps(raw), as_version=4))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instseg_lib.book", *args], capture_output=True, text=True,
                          timeout=120)


def test_unknown_profile_is_one_line_naming_the_fix():
    r = _cli("execute", "--profile", "laptop", "--book-dir", "/tmp/never")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "smoke, cpu, gpu" in lines[0] and "PROFILE=" in lines[0]


def test_missing_kernel_is_one_line_naming_the_fix():
    r = _cli("execute", "--profile", "smoke", "--kernel", "no-such-kernel", "--book-dir", "/tmp/never")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-kernel" in lines[0] and "make setup" in lines[0]


@pytest.mark.slow
def test_failing_notebook_stops_the_run_naming_notebook_and_cell(tmp_path, monkeypatch):
    src, bsrc = tmp_path / "notebooks", tmp_path / "book"
    src.mkdir(), bsrc.mkdir()
    (bsrc / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                   "  - file: notebooks/good\n  - file: notebooks/bad\n  - file: notebooks/after\n")
    for name, body in [("good", "x = 1"), ("bad", "raise ValueError('twin missing')"), ("after", "y = 2")]:
        nb = nbformat.v4.new_notebook()
        p = nbformat.v4.new_code_cell('profile = "cpu"')
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, nbformat.v4.new_code_cell("z = 0"), nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, src / f"{name}.ipynb")
    monkeypatch.setattr(book, "NOTEBOOK_SRC", src)
    monkeypatch.setattr(book, "BOOK_SRC", bsrc)
    monkeypatch.setattr(book, "toc_notebooks", lambda toc=bsrc / "_toc.yml": ["good", "bad", "after"])
    with pytest.raises(book.BookError) as err:
        book.execute("smoke", tmp_path / "out")
    msg = str(err.value)
    assert "notebooks/bad.ipynb" in msg and "cell" in msg and "ValueError: twin missing" in msg
    assert (tmp_path / "out" / "notebooks" / "good.ipynb").exists()
    assert not (tmp_path / "out" / "notebooks" / "after.ipynb").exists()  # the run stopped
    executed = json.loads((tmp_path / "out" / "notebooks" / "good.ipynb").read_text())
    assert 'profile = "smoke"' in "".join("".join(c["source"]) for c in executed["cells"])


def test_executed_pages_fold_code_and_show_the_profile_as_a_badge(tmp_path):
    """The executor adds the header cell (badge + banner) under the parameters, hides both
    parameters cells, and folds every other code cell, without touching notebook sources."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["parameters"]})
    shown = nbformat.v4.new_code_cell("x = 1")
    removed = nbformat.v4.new_code_cell("y = 2", metadata={"tags": ["remove-cell"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), params, shown, removed]
    nb = book.with_header(nb)
    assert [c.metadata.get("tags", []) for c in nb.cells][2] == [book.HEADER_TAG, "remove-input"]
    assert "page_header(profile)" in nb.cells[2].source
    assert book.with_header(nb) is nb and sum(book.HEADER_TAG in c.metadata.get("tags", []) for c in nb.cells) == 1
    injected = nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(2, injected)
    path = tmp_path / "page.ipynb"
    nbformat.write(nb, path)
    book.tidy_executed(path)
    tags = {c.source: c.metadata.get("tags", []) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"}
    assert "remove-cell" in tags['profile = "cpu"'] and "remove-cell" in tags['profile = "smoke"']
    assert tags["x = 1"] == ["hide-input"]
    assert tags["y = 2"] == ["remove-cell"]
    assert "hide-input" not in tags[book.HEADER_SOURCE]


def test_timings_record_sums_the_latest_time_of_each_notebook_and_says_which_are_fresh(monkeypatch):
    from instseg_lib.papers.index import wall_time_sentence

    monkeypatch.setattr(book, "toc_notebooks", lambda toc=None: ["a", "b", "c", "what_reproduced"])
    rec = book.timings_record("smoke", {"a": 10.0, "b": 2.5, "c": 1.0}, ["b"], partial=True, running="what_reproduced")
    assert rec["total_seconds"] == 13.5 and rec["rerun"] == ["b"] and rec["partial"] and not rec["complete"]
    assert rec["missing"] == []  # the running notebook is not missing, only not timed yet
    text = wall_time_sentence(rec)
    assert text.startswith("14 s") and "partial run" in text and "re-timed 1 of them (b)" in text
    assert "other 2 times are from the runs that last executed" in text
    done = book.timings_record("smoke", {"a": 10.0, "b": 2.5, "c": 1.0, "what_reproduced": 0.5},
                               ["a", "b", "c", "what_reproduced"], partial=False)
    assert done["complete"] and done["total_seconds"] == 14.0
    assert wall_time_sentence({**done, "notebooks": {"a": 10.0}, "total_seconds": 10.0}).startswith(
        "10 s for the 1 notebook executed before this summary")
    assert "2 notebooks have no recorded time" in wall_time_sentence(
        book.timings_record("smoke", {"a": 1.0}, ["a"], partial=True, running="what_reproduced"))


@pytest.mark.slow
def test_partial_run_retimes_its_notebooks_and_the_summary_and_keeps_the_others(tmp_path, monkeypatch):
    src, bsrc = tmp_path / "notebooks", tmp_path / "book"
    src.mkdir(), bsrc.mkdir()
    names = ["a", "b", "what_reproduced"]
    (bsrc / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                   + "".join(f"  - file: notebooks/{n}\n" for n in names))
    seen = tmp_path / "seen.json"
    body = {"a": "x = 1", "b": "y = 2",
            "what_reproduced": "import os, pathlib\npathlib.Path(os.environ['SEEN']).write_text("
                               "pathlib.Path(os.environ['INSTSEG_BOOK_TIMINGS']).read_text())"}
    for name in names:
        nb = nbformat.v4.new_notebook()
        p = nbformat.v4.new_code_cell('profile = "cpu"')
        p.metadata["tags"] = ["parameters"]
        nb.cells = [p, nbformat.v4.new_code_cell(body[name])]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, src / f"{name}.ipynb")
    monkeypatch.setenv("SEEN", str(seen))
    monkeypatch.setattr(book, "NOTEBOOK_SRC", src)
    monkeypatch.setattr(book, "BOOK_SRC", bsrc)
    monkeypatch.setattr(book, "toc_notebooks", lambda toc=None: list(names))
    monkeypatch.setattr(book, "with_header", lambda nb: nb)  # the header cell needs the real library set-up
    out = tmp_path / "out"
    full = book.execute("smoke", out)
    assert set(full["notebooks"]) == set(names) and full["complete"] and not full["partial"]
    path = out / "_build" / "timings.json"
    rec = json.loads(path.read_text())
    rec["notebooks"]["a"] = 1000.0  # a sentinel: a partial run that leaves `a` out must keep it
    path.write_text(json.dumps(rec))
    part = book.execute("smoke", out, only=["b"])
    assert part["notebooks"]["a"] == 1000.0 and part["notebooks"]["b"] < 1000.0
    assert part["rerun"] == ["b", "what_reproduced"] and part["partial"] and part["complete"]
    assert part["total_seconds"] == pytest.approx(sum(part["notebooks"].values()), abs=0.02)
    during = json.loads(seen.read_text())  # what the summary page read while it ran
    assert during["running"] == "what_reproduced" and "what_reproduced" not in during["notebooks"]
    assert during["notebooks"]["a"] == 1000.0 and during["notebooks"]["b"] == part["notebooks"]["b"]
    assert during["total_seconds"] == pytest.approx(1000.0 + part["notebooks"]["b"], abs=0.02)


def test_notebook_sources_leave_the_header_to_the_executor_and_the_conventions_say_so():
    conventions = (book.NOTEBOOK_SRC / "CONVENTIONS.md").read_text()
    readme = (book.REPO_ROOT / "README.md").read_text()
    assert book.HEADER_TAG in conventions and "page_header(profile)" in conventions
    assert "header cell" in readme and "CONVENTIONS.md" in readme
    for n in book.toc_notebooks():
        nb = nbformat.read(book.NOTEBOOK_SRC / f"{n}.ipynb", as_version=4)
        for c in nb.cells:
            assert book.HEADER_TAG not in c.metadata.get("tags", []), n
            assert "page_header(" not in c.source, n  # the executor's header already calls it
