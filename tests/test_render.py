"""Paper-vs-ours rendering and verdict recording, on a hand-made table."""

from __future__ import annotations

import pytest

from instseg_lib.papers.render import (Provenance, claims_frame, compare_table, load_verdicts,
                                       record_verdicts, verdicts_path)
from instseg_lib.papers.schema import Claim, PaperTable, Row, check_claims

TABLE = PaperTable(
    paper="toy", number=9, caption="Depth study.", dataset="VOC", split="val",
    key_columns=("Depth",), value_columns=("Mean IoU %", "Pixel acc. %"),
    units={"Mean IoU %": "%", "Pixel acc. %": "%"},
    rows=(Row("d50", {"Depth": 50, "Mean IoU %": 60.0, "Pixel acc. %": 90.0}),
          Row("d101", {"Depth": 101, "Mean IoU %": 62.5, "Pixel acc. %": 91.0}),
          Row("other", {"Depth": "CRF-RNN", "Mean IoU %": 70.0, "Pixel acc. %": None}, ours=False)),
    claims=(Claim("deeper", "101 beats 50", "greater", "Mean IoU %", ("d101",), ("d50",)),),
)


@pytest.fixture(autouse=True)
def _results(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTSEG_RESULTS", str(tmp_path))


def test_compare_table_puts_paper_ours_and_difference_side_by_side():
    df = compare_table(TABLE, {"d50": {"Mean IoU %": 41.234}, "other": {"Mean IoU %": 1.0}})
    assert list(df.index) == ["50", "101", "CRF-RNN"]
    assert df.loc["50", ("Mean IoU %", "paper")] == 60.0
    assert df.loc["50", ("Mean IoU %", "ours")] == 41.23
    assert df.loc["50", ("Mean IoU %", "Δ (ours − paper)")] == pytest.approx(-18.77)
    assert df.loc["101", ("Mean IoU %", "ours")] == ""  # not run: empty, not zero
    assert df.loc["CRF-RNN", ("Mean IoU %", "ours")] == ""  # other methods keep no ours side
    assert df.loc["CRF-RNN", ("Pixel acc. %", "paper")] == ""


def test_verdicts_are_recorded_and_collected():
    ours = {"d50": {"Mean IoU %": 40.0}, "d101": {"Mean IoU %": 39.0}}
    results = check_claims(TABLE, ours)
    assert [r.verdict for r in results] == ["not reproduced"]
    assert "not reproduced" in claims_frame(results)["verdict"].tolist()
    prov = Provenance(dataset="VOC twin", profile="smoke", hardware="cpu", wall_seconds=12.0)
    assert "VOC twin" in prov.caption(TABLE) and "smoke" in prov.caption(TABLE)
    record_verdicts(TABLE, results, prov)
    recs = load_verdicts("smoke")
    assert len(recs) == 1 and recs[0]["claims"][0]["verdict"] == "not reproduced"
    assert verdicts_path("smoke", TABLE).exists()
    assert load_verdicts("cpu") == []


def test_noise_is_named_in_the_caption_sentence_and_recorded(tmp_path):
    from instseg_lib.papers.render import noise_sentence
    from instseg_lib.papers.schema import Noise

    ours = {"d50": {"Mean IoU %": 40.0}, "d101": {"Mean IoU %": 40.5}}
    noise = Noise(sigma={"Mean IoU %": 1.0}, chance={"Mean IoU %": 3.0}, source="Seed spread of toy.")
    results = check_claims(TABLE, ours, noise)
    assert [r.verdict for r in results] == ["inconclusive"]
    assert "Seed spread of toy." in noise_sentence(noise) and "inconclusive" in noise_sentence(noise)
    assert "without a noise estimate" in noise_sentence(None)
    record_verdicts(TABLE, results, Provenance(dataset="VOC twin", profile="smoke"), noise)
    rec = load_verdicts("smoke")[0]
    assert rec["noise"] == [{"sigma": {"Mean IoU %": 1.0}, "chance": {"Mean IoU %": 3.0}, "z": 2.0,
                             "source": "Seed spread of toy."}]
    assert rec["claims"][0]["verdict"] == "inconclusive"
