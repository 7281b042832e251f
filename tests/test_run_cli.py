"""``python -m instseg_lib.run``: the headless runner of each paper's headline table."""

from __future__ import annotations

import json

import pytest

from instseg_lib import run
from instseg_lib.paths import REPO_ROOT


def test_list_names_every_paper(capsys):
    assert run.main(["--list"]) == 0
    out = capsys.readouterr().out
    for paper in ("wu2016", "arnab2017", "liang2015", "fathi2017", "dai2015"):
        assert f"{paper} --table table1" in out


@pytest.mark.parametrize("paper", sorted(run.TABLES))
def test_each_entry_makes_the_calls_its_notebook_makes(paper):
    for t in run.TABLES[paper].values():
        nb = json.loads((REPO_ROOT / "notebooks" / f"{t.notebook}.ipynb").read_text())
        source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        for call in t.calls:
            assert call in source, f"{t.notebook} no longer calls {call}: update instseg_lib.run.TABLES"


def test_runs_the_entry_at_the_asked_profile(monkeypatch, capsys):
    seen = []
    monkeypatch.setitem(run.TABLES["fathi2017"], "table1",
                        run.TableRun("fathi2017_table1", (), lambda p: seen.append(p.name)))
    assert run.main(["fathi2017", "--profile", "smoke"]) == 0
    assert seen == ["smoke"]
    assert "--only fathi2017_table1" in capsys.readouterr().out


def test_unknown_table_and_gpu_without_cuda_are_refused(monkeypatch, capsys):
    assert run.main(["wu2016", "--table", "table9"]) == 2
    assert "no runnable table 'table9'" in capsys.readouterr().err
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("INSTSEG_ALLOW_GPU_PROFILE_ON_CPU", raising=False)
    called = []
    monkeypatch.setitem(run.TABLES["wu2016"], "table1", run.TableRun("wu2016_table1", (), called.append))
    assert run.main(["wu2016", "--profile", "gpu"]) == 2
    assert "INSTSEG_ALLOW_GPU_PROFILE_ON_CPU" in capsys.readouterr().err and not called
