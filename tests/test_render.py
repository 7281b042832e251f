"""Paper-vs-ours rendering and verdict recording, on a hand-made table."""

from __future__ import annotations

import pandas as pd
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


# --------------------------------------------------------------------------- the one table renderer
WIDE_TABLE = PaperTable(
    paper="toy", number=8, caption="Per-class IoU.", dataset="VOC", split="val",
    key_columns=("Method",), value_columns=tuple(f"class{i}" for i in range(8)),
    units={f"class{i}": "%" for i in range(8)},
    rows=tuple(Row(f"m{j}", {"Method": f"method {j}", **{f"class{i}": 10.0 * j + i for i in range(8)}}, ours=j < 2)
               for j in range(6)),
)


def test_comparison_frames_label_the_key_fields_and_leave_not_run_blank():
    from instseg_lib.papers.render import OTHER, comparison_frames

    (df,) = comparison_frames(TABLE, {"d50": {"Mean IoU %": 41.234}})
    assert ("Depth", "") in df.columns  # the key field is a named column, not an unlabelled index
    assert list(df[("Depth", "")]) == ["50", "101", "CRF-RNN"]
    assert df.loc[0, ("Mean IoU %", "ours")] == 41.23
    assert df.loc[0, ("Mean IoU %", "Δ ours − paper")] == pytest.approx(-18.77)
    assert pd.isna(df.loc[1, ("Mean IoU %", "ours")])  # not run: blank, not zero
    assert df.loc[2, ("Mean IoU %", "ours")] == OTHER  # another method's row: the paper's only


def test_wide_tables_are_split_into_blocks_that_keep_every_column():
    from instseg_lib.papers.render import SPLIT, comparison_frames

    frames = comparison_frames(WIDE_TABLE, {"m0": {"class3": 1.0}})
    assert len(frames) == -(-len(WIDE_TABLE.rows) // SPLIT)
    assert all(len(f) == len(WIDE_TABLE.value_columns) for f in frames)
    groups = [c[0] for f in frames for c in f.columns if c[1] == "paper"]
    assert groups == [f"Method: method {j}" for j in range(6)]  # every row, labelled, none elided


def test_frame_html_shows_every_character_and_no_index():
    from instseg_lib.papers.render import frame_html, frame_text

    long = "a claim " * 40 + "that ends here"
    df = pd.DataFrame({"claim": [long], "mAP^r_0.5 %": [12.5]})
    out = frame_html(df)
    assert "that ends here" in out and "…" not in out and "..." not in out
    assert "<th>0</th>" not in out and ">0</td>" not in out  # no 0..N index column
    assert r"\(\mathrm{mAP}^{r}_{0.5}\)" in out and 'class="math' in out  # typeset for MathJax
    assert "that ends here" in frame_text(df)


def test_downloads_carry_paper_ours_and_provenance():
    import base64
    import csv
    import io
    import json
    import re

    from instseg_lib.papers.render import comparison_html

    ours = {"d50": {"Mean IoU %": 40.0}, "d101": {"Mean IoU %": 39.0}}
    prov = Provenance(dataset="VOC twin", profile="cpu", hardware="cpu", wall_seconds=12.0)
    block = comparison_html(TABLE, ours, prov, None, check_claims(TABLE, ours))
    links = dict(re.findall(r'download="[^"]+\.(csv|json)" href="data:[^;]+;base64,([^"]+)"', block.html))
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(links["csv"]).decode())))
    d50 = next(r for r in rows if r["row"] == "d50" and r["column"] == "Mean IoU %")
    assert (d50["paper"], d50["ours"], d50["ours_dataset"], d50["profile"]) == ("60.0", "40.0", "VOC twin", "cpu")
    rec = json.loads(base64.b64decode(links["json"]))
    assert rec["ours_provenance"]["wall_seconds"] == 12.0
    assert rec["claims"][0]["verdict"] == "not reproduced"
    other = next(r for r in rec["rows"] if r["row"] == "other")
    assert other["reproduced_by_us"] is False and other["values"]["Mean IoU %"]["ours"] is None


def test_smoke_verdicts_print_as_not_applicable_but_are_recorded():
    from instseg_lib.papers.render import claims_html, profile_banner, shown_verdict

    ours = {"d50": {"Mean IoU %": 40.0}, "d101": {"Mean IoU %": 39.0}}
    results = check_claims(TABLE, ours)
    assert shown_verdict("not reproduced", "smoke") == "n/a (smoke)"
    assert shown_verdict("not reproduced", "cpu") == "not reproduced"
    assert shown_verdict("not run", "smoke") == "not run"
    assert "n/a (smoke)" in claims_html(results, "smoke") and "not reproduced" not in claims_html(results, "smoke")
    assert "admonition" in profile_banner("smoke").html and "admonition" in profile_banner("cpu").html
    assert "admonition" not in profile_banner("gpu").html
    record_verdicts(TABLE, results, Provenance(dataset="VOC twin", profile="smoke"))
    assert load_verdicts("smoke")[0]["claims"][0]["verdict"] == "not reproduced"  # the file keeps the verdict


def test_recorded_verdicts_name_their_page_and_keep_it_when_rerun_outside_the_executor(monkeypatch):
    prov = Provenance(dataset="VOC twin", profile="smoke")
    results = check_claims(TABLE, {"d50": {"Mean IoU %": 40.0}, "d101": {"Mean IoU %": 39.0}})
    monkeypatch.setenv("INSTSEG_PAGE", "notebooks/toy_table9")
    record_verdicts(TABLE, results, prov)
    monkeypatch.delenv("INSTSEG_PAGE")
    record_verdicts(TABLE, results, prov)  # e.g. nbval re-running the notebook
    rec = load_verdicts("smoke")[0]
    assert rec["page"] == "notebooks/toy_table9" and rec["anchor"] == "toy-table9"


def test_kendall_tau_matches_its_definition():
    from instseg_lib.papers.render import kendall_tau

    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    scipy_stats = pytest.importorskip("scipy.stats")
    x, y = [3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]
    assert kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y).statistic)
    assert kendall_tau([1, 1], [1, 2]) is None and kendall_tau([1], [1]) is None


def test_trend_view_uses_the_seed_sigma_of_each_row():
    from instseg_lib.papers.render import trend_data
    from instseg_lib.papers.schema import Noise

    ours = {"d50": {"Mean IoU %": 40.0}, "d101": {"Mean IoU %": 42.0}}
    per_row = {"d50": Noise(sigma={"Mean IoU %": 1.5}), "d101": Noise(sigma={"Mean IoU %": 0.5})}
    (d,) = trend_data(TABLE, ours, per_row)
    assert d["column"] == "Mean IoU %" and d["rows"] == ["d50", "d101"]  # the other method's row is left out
    assert d["paper"] == [60.0, 62.5] and d["ours"] == [40.0, 42.0]
    assert d["sigma"] == [1.5, 0.5] and d["tau"] == pytest.approx(1.0)
    assert trend_data(TABLE, {"d50": {"Mean IoU %": 40.0}}) == []  # one row: no trend to show


def test_captions_cite_the_paper_author_year_not_by_its_key():
    from instseg_lib.papers import PAPERS, TABLES, citation, table_citation

    assert [citation(k) for k in PAPERS] == ["Wu et al. 2016", "Arnab & Torr 2017", "Liang et al. 2015",
                                             "Fathi et al. 2017", "Dai et al. 2015"]
    assert citation("toy") == "toy"  # not one of the papers: the key, unchanged
    t = TABLES["wu2016.table1"]
    assert table_citation(t) == "Wu et al. 2016, Table 1"
    cap = Provenance(dataset="VOC twin", profile="smoke").caption(t)
    assert cap.startswith("**Wu et al. 2016, Table 1.**") and "wu2016" not in cap
    assert Provenance(dataset="VOC twin", profile="smoke").caption(TABLES["arnab2017.table1"]).startswith(
        "**Arnab & Torr 2017, Table 1.**")
