"""Paper versus ours, side by side, with a difference column and a verdict per claim.

The one function the table notebooks call is :func:`show_comparison`. It displays a
caption (dataset, profile, hardware, run time), the table, and the claims with their
verdicts, and records the verdicts under ``results/<profile>/verdicts/`` where the
"What reproduced" page collects them.

"Ours" numbers are passed in the paper's units (per cent where the paper prints per cent)
and always come from experiment results; this module never makes up a number.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from ..experiments import read_result, write_result
from ..paths import data_source, results_dir
from . import table_citation
from .schema import ClaimResult, Noise, NoiseSpec, PaperTable, check_claims

Ours = Mapping[str, Mapping[str, float | int | None]]

#: Tables with more value columns than this are shown transposed (one row per column).
WIDE = 6


def _row_label(table: PaperTable, row_id: str) -> str:
    row = table.row(row_id)
    parts = [str(row.cells[c]) for c in table.key_columns if row.cells.get(c) not in (None, "")]
    return " / ".join(parts) if parts else row_id


def compare_table(table: PaperTable, ours: Ours | None = None, *, digits: int = 2) -> pd.DataFrame:
    """A DataFrame of paper, ours and ours - paper for every row and value column.

    Rows we do not reproduce (other methods) keep an empty ours side. Wide (per-class)
    tables come transposed: one row per column, one column group per table row.
    """
    ours = ours or {}
    records = []
    for row in table.rows:
        for col in table.value_columns:
            paper = row.cells.get(col)
            mine = ours.get(row.id, {}).get(col) if row.ours else None
            diff = None if paper is None or mine is None else float(mine) - float(paper)
            records.append({"row": _row_label(table, row.id), "column": col, "paper": paper,
                            "ours": mine, "Δ (ours − paper)": diff})
    df = pd.DataFrame.from_records(records)
    for c in ("paper", "ours", "Δ (ours − paper)"):
        df[c] = pd.to_numeric(df[c], errors="coerce").round(digits)
    row_order = list(dict.fromkeys(df["row"]))
    col_order = list(table.value_columns)
    if len(table.value_columns) > WIDE:
        out = df.pivot(index="column", columns="row", values=["paper", "ours", "Δ (ours − paper)"])
        out = out.swaplevel(0, 1, axis=1).reindex(columns=row_order, level=0)
        out = out.reindex(col_order)
    else:
        out = df.pivot(index="row", columns="column", values=["paper", "ours", "Δ (ours − paper)"])
        out = out.swaplevel(0, 1, axis=1).reindex(columns=col_order, level=0).reindex(row_order)
    out.index.name = None
    out.columns.names = [None, None]
    return out.astype(object).where(out.notna(), "")


def claims_frame(results: list[ClaimResult]) -> pd.DataFrame:
    """One row per claim: its text, our two compared numbers and the verdict."""
    rows = []
    for r in results:
        rows.append({"claim": r.claim.text, "paper says (where)": r.claim.source,
                     "ours": r.detail, "verdict": r.verdict})
    return pd.DataFrame(rows, columns=["claim", "paper says (where)", "ours", "verdict"])


@dataclass(frozen=True)
class Provenance:
    """What the caption says about our side: where and how it was computed."""

    dataset: str
    profile: str
    hardware: str = ""
    wall_seconds: float | None = None
    note: str = ""

    def caption(self, table: PaperTable, extra: str = "") -> str:
        """The caption; ``extra`` (e.g. the noise sentence) goes before the transcription note."""
        parts = [f"**{table_citation(table)}.** {table.caption}",
                 f"Paper: {table.dataset} {table.split}. Ours: {self.dataset}, profile `{self.profile}`"]
        if self.hardware:
            parts.append(f"on {self.hardware}")
        if self.wall_seconds is not None:
            parts.append(f"in {self.wall_seconds:.0f} s of training and evaluation")
        text = parts[0] + " " + ", ".join(parts[1:]) + "."
        if self.note:
            text += " " + self.note.rstrip(".") + "."
        if extra:
            text += " " + extra
        if table.note:
            text += f" *Transcription note:* {table.note}"
        return text


def verdicts_path(profile: str, table: PaperTable):
    return results_dir(profile) / "verdicts" / f"{table.key}.json"


def _noises(noise: NoiseSpec) -> list[Noise]:
    if noise is None:
        return []
    if isinstance(noise, Noise):
        return [noise]
    return list({id(n): n for n in noise.values()}.values())


def noise_sentence(noise: NoiseSpec) -> str:
    """One sentence for a caption: how verdicts account for run-to-run noise."""
    noises = _noises(noise)
    if not noises:
        return ("*Verdicts compare single runs without a noise estimate*: a small difference may be "
                "seed noise.")
    sources = " ".join(dict.fromkeys(n.source for n in noises))  # one estimate per row may share a sentence
    return (f"*Noise:* {sources} A difference counts only beyond "
            f"{noises[0].z:.3g} standard deviations of a difference of runs (a 95% band, Student's t for "
            "the number of seeds); closer calls, and comparisons between runs that all sit at the trivial "
            "predictor's level, are *inconclusive*.")


def _noise_record(n: Noise) -> dict[str, Any]:
    return {"sigma": dict(n.sigma), "chance": dict(n.chance), "z": n.z, "source": n.source}


def record_verdicts(table: PaperTable, results: list[ClaimResult], provenance: Provenance,
                    noise: NoiseSpec = None) -> None:
    """Write this table's verdicts (checksummed, atomic) for the "What reproduced" page.

    ``page`` (the book page showing the table, from ``$INSTSEG_PAGE``, which the book executor
    sets; an earlier record's page is kept when it is unset) and ``anchor`` let the front page
    link to the table.
    """
    path = verdicts_path(provenance.profile, table)
    page = os.environ.get("INSTSEG_PAGE") or ""
    if not page and path.exists():
        old = read_result(path)
        page = (old or {}).get("page", "")
    write_result(path, {
        "table": table.key, "caption": table.caption, "paper": table.paper, "number": table.number,
        "dataset": provenance.dataset, "profile": provenance.profile,
        "noise": [_noise_record(n) for n in _noises(noise)],
        "claims": [r.as_dict() for r in results],
        "page": page, "anchor": anchor(table),
    })


def load_verdicts(profile: str) -> list[dict[str, Any]]:
    """Every recorded table's verdicts for ``profile`` (corrupt files are skipped, with a warning)."""
    folder = results_dir(profile) / "verdicts"
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        rec = read_result(path)
        if rec is not None:
            out.append(rec)
    return out


# --------------------------------------------------------------------------- the one table renderer
class Raw(str):
    """A cell that is already HTML (a link, typeset math); :func:`frame_html` does not escape it."""


_MATH = [  # Python-generated names of the papers' metrics -> TeX (captions, headers, notes)
    (re.compile(r"\bmAP\^r_\{?vol\}?|\bmAP_vol\^r"), r"\mathrm{mAP}^{r}_{vol}"),
    (re.compile(r"\bAP\^r_\{?vol\}?|\bAP_vol\^r"), r"\mathrm{AP}^{r}_{vol}"),
    (re.compile(r"\bmAP\^r_\{?(0\.\d+)\}?"), r"\mathrm{mAP}^{r}_{%s}"),
    (re.compile(r"\bAP\^r_\{?(0\.\d+)\}?"), r"\mathrm{AP}^{r}_{%s}"),
    (re.compile(r"\bmAP\^r"), r"\mathrm{mAP}^{r}"),
    (re.compile(r"\bAP\^r"), r"\mathrm{AP}^{r}"),
]
_MATH_ANY = re.compile("|".join(f"(?:{rx.pattern})" for rx, _ in _MATH))


def _tex(token: str) -> str:
    for rx, rep in _MATH:
        m = rx.fullmatch(token)
        if m:
            return rep % m.group(1) if "%s" in rep else rep
    return token  # pragma: no cover - _MATH_ANY only matches tokens of _MATH


def typeset(text: Any) -> str:
    """HTML-escape ``text`` and typeset the metric names (AP^r, mAP^r_0.5, AP^r_vol) as inline math.

    The spans carry Sphinx's own math classes, so the book's MathJax renders them.
    """
    if isinstance(text, Raw):
        return str(text)
    out, pos = [], 0
    s = "" if text is None else str(text)
    for m in _MATH_ANY.finditer(s):
        out.append(html.escape(s[pos:m.start()]))
        out.append(f'<span class="math notranslate nohighlight">\\({_tex(m.group(0))}\\)</span>')
        pos = m.end()
    out.append(html.escape(s[pos:]))
    return "".join(out)


def mathtext(text: str) -> str:
    """``text`` for a matplotlib label: metric names as mathtext (``$\\mathrm{AP}^{r}$``), ``$`` escaped."""
    out, pos = [], 0
    for m in _MATH_ANY.finditer(text):
        out.append(text[pos:m.start()].replace("$", r"\$"))
        out.append(f"${_tex(m.group(0))}$")
        pos = m.end()
    out.append(text[pos:].replace("$", r"\$"))
    return "".join(out)


def markdown_html(text: str) -> str:
    """Caption Markdown (bold, italics, code) as HTML, with the metric names typeset."""
    from markdown_it import MarkdownIt

    tokens: list[str] = []

    def protect(m: re.Match) -> str:  # ``_`` in mAP^r_0.5 would start emphasis
        tokens.append(m.group(0))
        return f"MATHTOKEN{len(tokens) - 1}Z"

    body = MarkdownIt("commonmark").render(_MATH_ANY.sub(protect, text)).strip()
    for i, tok in enumerate(tokens):
        body = body.replace(f"MATHTOKEN{i}Z", typeset(tok))
    if body.startswith("<p>") and body.endswith("</p>") and body.count("<p>") == 1:
        body = body[3:-4]
    return body


def _cell_text(v: Any, digits: int | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and digits is not None:
        return f"{v:.{digits}f}"
    return str(v)


def frame_html(df: pd.DataFrame, *, css: str = "", digits: int | None = None) -> str:
    """Any DataFrame as a full HTML table: every character of every cell, no elision, no 0..N
    index (a named or non-range index becomes a first, labelled column), two-level headers
    kept, metric names typeset, in a horizontally scrolling box."""
    df = df.copy()
    if not isinstance(df.index, pd.RangeIndex) or df.index.name:
        name = df.index.name or ""
        df = df.reset_index()
        first = df.columns[0]
        df = df.rename(columns={first: (name, "") if isinstance(first, tuple) else name})
    cols = list(df.columns)
    two = any(isinstance(c, tuple) for c in cols)
    head = []
    if two:
        top, sub = [], []
        for c in cols:
            t, b = (c[0], c[1]) if isinstance(c, tuple) else (c, "")
            if top and top[-1][0] == t and t != "" and b != "":
                top[-1][1] += 1
            else:
                top.append([t, 1])
            sub.append(b)
        head.append("<tr>" + "".join(f'<th colspan="{n}">{typeset(t)}</th>' if n > 1 else f"<th>{typeset(t)}</th>"
                                     for t, n in top) + "</tr>")
        head.append("<tr>" + "".join(f"<th>{typeset(b)}</th>" for b in sub) + "</tr>")
    else:
        head.append("<tr>" + "".join(f"<th>{typeset(c)}</th>" for c in cols) + "</tr>")
    body = []
    for row in df.itertuples(index=False, name=None):
        cells = []
        for v in row:
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            text = v if isinstance(v, Raw) else _cell_text(v, digits)
            if num:
                cells.append(f'<td class="num">{typeset(text)}</td>')
            else:  # short labels ("d50-s16-k3-d6") stay on one line; prose wraps
                nw = ' class="nw"' if len(str(text)) <= 24 else ""
                cells.append(f"<td{nw}>{typeset(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="instseg-scroll"><table class="instseg-table {css}">'
            f"<thead>{''.join(head)}</thead><tbody>{''.join(body)}</tbody></table></div>")


def frame_text(df: pd.DataFrame) -> str:
    """The plain-text twin of :func:`frame_html`: every cell in full, no index."""
    show_index = not isinstance(df.index, pd.RangeIndex) or bool(df.index.name)
    if any(isinstance(c, tuple) for c in df.columns):
        df = df.set_axis([" ".join(str(p) for p in c if p != "") if isinstance(c, tuple) else c
                          for c in df.columns], axis=1)
    with pd.option_context("display.max_colwidth", None, "display.max_columns", None,
                           "display.max_rows", None, "display.width", 10_000):
        return df.to_string(index=show_index)


class HtmlBlock:
    """Rich output: ``html`` for the book, ``text`` for plain consoles and nbval."""

    def __init__(self, html_text: str, text: str = "") -> None:
        self.html, self.text = html_text, text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text or "(HTML output)"


def show_frame(df: pd.DataFrame, **kw: Any) -> HtmlBlock:
    """A DataFrame through the book's one table renderer (what the notebooks display)."""
    return HtmlBlock(frame_html(df, **kw), frame_text(df))


def install_display(ip: Any = None) -> None:
    """Make every DataFrame a notebook displays go through :func:`frame_html`, in full."""
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_rows", None)
    pd.set_option("display.width", 10_000)
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover
            return
        ip = get_ipython()
    if ip is not None:
        ip.display_formatter.formatters["text/html"].for_type(pd.DataFrame, frame_html)


# --------------------------------------------------------------------------- the profile banner
#: Profiles whose numbers say nothing about the papers: their verdicts print as "n/a (<profile>)".
NA_PROFILES = frozenset({"smoke"})

BANNERS = {
    "smoke": ("Smoke build: the numbers mean nothing",
              "Every number of ours on this page comes from nets trained for a few steps on a few tiny "
              "twin images. It shows that the code runs end to end, and the page's layout; it cannot show "
              "whether any claim of the paper holds. Verdicts are printed as n/a (smoke)."),
    "cpu": ("cpu build: directions on a small twin, not the paper's numbers",
            "Ours are quarter-width nets, started from a stand-in for ImageNet pretraining and trained "
            "briefly on a 128 px synthetic twin, not on the paper's dataset. Compare directions and rankings with the paper's (the trend "
            "view and Kendall's τ); the Δ column is far from zero by construction and is not a measure "
            "of reproduction. Verdicts count only differences beyond the measured seed noise."),
}


def shown_verdict(verdict: str, profile: str) -> str:
    """How a verdict is printed in ``profile``: ``n/a (smoke)`` where numbers mean nothing."""
    return f"n/a ({profile})" if profile in NA_PROFILES and verdict != "not run" else verdict


def profile_banner(profile: str, note: str = "") -> HtmlBlock:
    """A one-line profile badge, plus an admonition saying what this profile's numbers can show."""
    badge = f'<p class="instseg-badge"><span>profile</span> <code>{html.escape(profile)}</code></p>'
    text = f"profile: {profile}"
    if profile in BANNERS:
        title, body = BANNERS[profile]
        extra = f" <em>{typeset(note.rstrip('.'))}.</em>" if note else ""
        badge += (f'<div class="admonition warning instseg-banner"><p class="admonition-title">{html.escape(title)}</p>'
                  f"<p>{html.escape(body)}{extra}</p></div>")
        text += f"\n{title}. {body}"
    return HtmlBlock(badge, text)


def page_header(profile: str) -> HtmlBlock:
    """What the book executor adds under each page's parameters: the display set-up, the badge
    and the banner (the ``profile`` string is the injected parameter)."""
    from ..profiles import get_profile

    install_display()
    block = profile_banner(profile, get_profile(profile).note)
    if data_source() == "twin":
        return block
    # a run on the real datasets says so on every page (the twin's pages stay as they were)
    from ..data.registry import real_image_size

    size = real_image_size(profile)
    scale = "at native resolution" if size is None else f"with the short side resized to {size} px"
    line = (f"data: the real datasets (INSTSEG_DATASETS=real), not the synthetic twin the profile's notes "
            f"describe; images read {scale}")
    return HtmlBlock(block.html + f'<p class="instseg-badge"><span>data</span> {html.escape(line)}</p>',
                     block.text + "\n" + line)


# --------------------------------------------------------------------------- paper vs ours
def anchor(table: PaperTable) -> str:
    """The HTML id of a table's block on its page (``wu2016-table1``)."""
    return f"{table.paper}-table{table.number}"


def _key_text(table: PaperTable, row) -> dict[str, str]:
    return {c: _cell_text(row.cells.get(c)) for c in table.key_columns}


def _label(table: PaperTable, row) -> str:
    parts = [f"{c}: {v}" for c, v in _key_text(table, row).items() if v != ""]
    return "; ".join(parts) if parts else row.id


#: Per-class tables with more value columns than this are shown transposed, and split into
#: blocks of at most SPLIT paper rows, so that no column is hidden.
SPLIT = 4
OTHER = "–"  # ours side of another method's row: shown as the paper's only


def _multi(df: pd.DataFrame) -> pd.DataFrame:
    df.columns = pd.MultiIndex.from_tuples(list(df.columns))
    return df


def comparison_frames(table: PaperTable, ours: Ours | None = None, *, digits: int = 2) -> list[pd.DataFrame]:
    """The paper-vs-ours table as one or more frames, ready for :func:`frame_html`.

    Narrow tables: the key columns by name, then paper | ours | Δ per value column, one line
    per row. Wide (per-class) tables: one line per value column, and per table row a
    paper | ours | Δ group headed by the row's labelled key fields, split into blocks of
    :data:`SPLIT` rows. An empty ours cell is "not run"; ``–`` marks another method's row.
    """
    ours = ours or {}

    def trio(row, col):
        paper = row.cells.get(col)
        if not row.ours:
            return (paper, OTHER, OTHER)
        mine = ours.get(row.id, {}).get(col)
        diff = None if paper is None or mine is None else float(mine) - float(paper)
        rnd = (lambda v: None if v is None else round(float(v), digits))
        return (rnd(paper), rnd(mine), rnd(diff))

    subs = ("paper", "ours", "Δ ours − paper")
    if len(table.value_columns) <= WIDE:
        recs = []
        for row in table.rows:
            rec: dict[Any, Any] = {(k, ""): v for k, v in _key_text(table, row).items()}
            for col in table.value_columns:
                for sub, v in zip(subs, trio(row, col)):
                    rec[(col, sub)] = v
            recs.append(rec)
        return [_multi(pd.DataFrame.from_records(recs))]
    frames = []
    rows = list(table.rows)
    for start in range(0, len(rows), SPLIT):
        block = rows[start:start + SPLIT]
        recs = []
        for col in table.value_columns:
            rec = {("column", ""): col}
            for row in block:
                for sub, v in zip(subs, trio(row, col)):
                    rec[(_label(table, row), sub)] = v
            recs.append(rec)
        frames.append(_multi(pd.DataFrame.from_records(recs)))
    return frames


LEGEND = ("<em>paper</em>: the number printed in the paper; <em>ours</em>: this build's; "
          "<em>Δ</em> = ours − paper. A blank <em>ours</em> cell means we have no number there: "
          "<strong>not run</strong> (no experiment of ours for that cell yet) or, in a per-class table, a class "
          "our evaluation images do not contain (its IoU is undefined); a blank <em>paper</em> cell means the "
          "paper prints no number there; <em>–</em> marks another method's row, shown as the paper's only.")


def comparison_records(table: PaperTable, ours: Ours | None, provenance: Provenance | None = None,
                       noise: NoiseSpec = None, results: list[ClaimResult] | None = None) -> dict[str, Any]:
    """Everything a rendered table shows, as data for the download (paper and ours, with provenance)."""
    ours = ours or {}
    rows = []
    for row in table.rows:
        vals = {}
        for col in table.value_columns:
            paper = row.cells.get(col)
            mine = ours.get(row.id, {}).get(col) if row.ours else None
            vals[col] = {"paper": paper, "ours": None if mine is None else float(mine),
                         "delta": None if paper is None or mine is None else float(mine) - float(paper)}
        rows.append({"row": row.id, "keys": {k: row.cells.get(k) for k in table.key_columns},
                     "reproduced_by_us": row.ours, "values": vals})
    prov = None
    if provenance is not None:
        prov = {"dataset": provenance.dataset, "profile": provenance.profile, "hardware": provenance.hardware,
                "wall_seconds": provenance.wall_seconds, "note": provenance.note}
    return {"table": table.key, "paper": table.paper, "number": table.number, "caption": table.caption,
            "paper_dataset": f"{table.dataset} {table.split}", "units": dict(table.units),
            "transcription_note": table.note, "ours_provenance": prov,
            "noise": [_noise_record(n) for n in _noises(noise)],
            "claims": [r.as_dict() for r in results or []], "rows": rows}


def comparison_csv(rec: Mapping[str, Any]) -> str:
    """One line per (row, column): keys, paper, ours, Δ and the provenance of ours."""
    prov = rec.get("ours_provenance") or {}
    keys = list(rec["rows"][0]["keys"]) if rec["rows"] else []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "row", *keys, "column", "unit", "paper", "ours", "ours_minus_paper",
                "reproduced_by_us", "ours_dataset", "profile", "hardware", "wall_seconds"])
    for r in rec["rows"]:
        for col, v in r["values"].items():
            w.writerow([rec["table"], r["row"], *[_cell_text(r["keys"][k]) for k in keys], col,
                        rec["units"].get(col, ""), _cell_text(v["paper"]), _cell_text(v["ours"]),
                        _cell_text(v["delta"]), "yes" if r["reproduced_by_us"] else "no",
                        prov.get("dataset", ""), prov.get("profile", ""), prov.get("hardware", ""),
                        _cell_text(prov.get("wall_seconds"))])
    return buf.getvalue()


def download_links(rec: Mapping[str, Any]) -> str:
    """CSV and JSON downloads of a rendered table, embedded in the page (no extra files)."""
    name = rec["table"].replace(".", "_")
    body_csv = base64.b64encode(comparison_csv(rec).encode()).decode()
    body_json = base64.b64encode((json.dumps(rec, indent=1, ensure_ascii=False) + "\n").encode()).decode()
    return (f'<p class="instseg-download">Download this table (paper and ours, with provenance): '
            f'<a download="{name}.csv" href="data:text/csv;base64,{body_csv}">CSV</a> · '
            f'<a download="{name}.json" href="data:application/json;base64,{body_json}">JSON</a></p>')


def claims_html(results: list[ClaimResult], profile: str) -> str:
    df = claims_frame(results)
    df["verdict"] = [shown_verdict(v, profile) for v in df["verdict"]]
    return frame_html(df, css="instseg-claims")


def comparison_html(table: PaperTable, ours: Ours | None, provenance: Provenance, noise: NoiseSpec = None,
                    results: list[ClaimResult] | None = None) -> HtmlBlock:
    """Caption, the table (split when wide), the legend, the claims and the downloads, as one block."""
    caption = provenance.caption(table, noise_sentence(noise) if ours else "")
    frames = comparison_frames(table, ours)
    parts = [f'<div class="instseg-comparison" id="{anchor(table)}">',
             f'<p class="instseg-caption">{markdown_html(caption)}</p>']
    for i, f in enumerate(frames):
        if len(frames) > 1:
            parts.append(f'<p class="instseg-part">Part {i + 1} of {len(frames)}</p>')
        parts.append(frame_html(f, css="instseg-compare"))
    parts.append(f'<p class="instseg-legend">{LEGEND}</p>')
    if results:
        parts.append(claims_html(results, provenance.profile))
    parts.append(download_links(comparison_records(table, ours, provenance, noise, results)))
    parts.append("</div>")
    text = caption + "\n" + "\n".join(frame_text(f) for f in frames)
    if results:
        text += "\n" + "\n".join(f"{r.claim.text} -> {shown_verdict(r.verdict, provenance.profile)}"
                                 for r in results)
    return HtmlBlock("".join(parts), text)


# --------------------------------------------------------------------------- trend view
def kendall_tau(x: list[float], y: list[float]) -> float | None:
    """Kendall's τ_b of two equally long sequences (``None`` below 2 items or when one is constant)."""
    n = len(x)
    if n < 2 or n != len(y):
        return None
    conc = disc = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif (dx > 0) == (dy > 0):
                conc += 1
            else:
                disc += 1
    denom = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return None if denom == 0 else (conc - disc) / denom


def _sigma(noise: NoiseSpec, row_id: str, column: str) -> float | None:
    n = noise.get(row_id) if isinstance(noise, Mapping) else noise
    if n is None or column not in n.sigma:
        return None
    return float(n.sigma[column])


def trend_data(table: PaperTable, ours: Ours, noise: NoiseSpec = None, max_columns: int = 3) -> list[dict[str, Any]]:
    """Per compared column (the claims' columns first): the rows with both numbers, the paper's
    values, ours, σ of ours and Kendall's τ between the two orders."""
    cols = list(dict.fromkeys([c.column for c in table.claims] + list(table.value_columns)))
    out = []
    for col in cols:
        rows = [r for r in table.rows if r.ours and r.cells.get(col) is not None
                and ours.get(r.id, {}).get(col) is not None]
        if len(rows) < 2:
            continue
        paper = [float(r.cells[col]) for r in rows]
        mine = [float(ours[r.id][col]) for r in rows]  # type: ignore[arg-type]
        out.append({"column": col, "rows": [r.id for r in rows], "labels": [_label(table, r) for r in rows],
                    "paper": paper, "ours": mine, "sigma": [_sigma(noise, r.id, col) for r in rows],
                    "tau": kendall_tau(paper, mine)})
        if len(out) == max_columns:
            break
    return out


def _ranks(v: list[float]) -> list[float]:
    order = sorted(range(len(v)), key=lambda i: -v[i])
    ranks = [0.0] * len(v)
    i = 0
    while i < len(order):  # ties share their mean rank
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _tau_text(tau: float | None) -> str:
    return "Kendall's τ undefined (a constant side)" if tau is None else f"Kendall's τ = {tau:+.2f}"


def trend_figure(table: PaperTable, data: list[dict[str, Any]], profile: str):
    """Per column: the paper's numbers and ours over the rows, each on its own y axis (ours with
    ±1 σ seed error bars), and the rank agreement of the two orders."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(data), 2, figsize=(9.0, 2.9 * len(data)), squeeze=False,
                             gridspec_kw={"width_ratios": [2.3, 1]})
    for (ax, rax), d in zip(axes, data):
        x = list(range(len(d["rows"])))
        ax.plot(x, d["paper"], "o-", color="tab:blue", label="paper (left axis)")
        ax.set_ylabel(mathtext(f"paper: {d['column']}"), color="tab:blue", fontsize=8)
        ax.tick_params(axis="y", colors="tab:blue", labelsize=7)
        ax2 = ax.twinx()
        yerr = [s if s is not None else 0.0 for s in d["sigma"]]
        ax2.errorbar(x, d["ours"], yerr=yerr if any(yerr) else None, fmt="s--", color="tab:orange",
                     capsize=3, label=f"ours, {profile} (right axis, ±1 σ)")
        ax2.set_ylabel(mathtext(f"ours: {d['column']}"), color="tab:orange", fontsize=8)
        ax2.tick_params(axis="y", colors="tab:orange", labelsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels([mathtext(lab if len(lab) <= 28 else d["rows"][i]) for i, lab in enumerate(d["labels"])],
                           rotation=30, ha="right", fontsize=7)
        ax.set_title(mathtext(f"{d['column']}: paper and ours over the rows"), fontsize=9)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="best")
        pr, orr = _ranks(d["paper"]), _ranks(d["ours"])
        n = len(pr)
        rax.plot([1, n], [1, n], color="0.7", lw=1, label="same order")
        rax.scatter(pr, orr, color="tab:purple", zorder=3, label="one row")
        rax.set_xlabel("rank in the paper (1 = highest)", fontsize=7)
        rax.set_ylabel("rank in ours", fontsize=7)
        rax.set_xlim(0.5, n + 0.5), rax.set_ylim(0.5, n + 0.5)
        rax.invert_xaxis(), rax.invert_yaxis()
        rax.tick_params(labelsize=7)
        rax.set_title(f"rank agreement: {_tau_text(d['tau'])}", fontsize=8)
        rax.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{table_citation(table)}: trend view (paper's numbers vs ours)", fontsize=10)
    fig.tight_layout()
    return fig


def trend_caption(table: PaperTable, data: list[dict[str, Any]], noise: NoiseSpec) -> HtmlBlock:
    has_sigma = any(s is not None for d in data for s in d["sigma"])
    taus = "; ".join(f"{d['column']}: {_tau_text(d['tau'])} over {len(d['rows'])} rows" for d in data)
    text = (f"Trend view of {table_citation(table)}. Left: the paper's numbers (blue, left axis) "
            "and ours (orange, right axis) over the rows that have both, each on its own axis, because on the "
            "twin only the direction and the order of the rows can be compared, not the level. ")
    text += ("Error bars on ours: ±1 σ, the standard deviation of one run over seeds from the noise "
             "estimate named in the table's caption. " if has_sigma else
             "Ours have no error bars: this table has no seed-noise estimate. ")
    text += ("Right: rank agreement, our rank of each row against the paper's; points on the grey diagonal are "
             "rows in the same place. Kendall's τ_b is +1 for the same order, −1 for the reverse, 0 for "
             f"unrelated orders; with few rows it is itself noisy. {taus}.")
    return HtmlBlock(f'<p class="instseg-figcaption"><strong>Figure.</strong> {typeset(text)}</p>', text)


def show_comparison(table: PaperTable, ours: Ours | None, provenance: Provenance,
                    noise: NoiseSpec = None) -> list[ClaimResult]:
    """Display caption, paper-vs-ours table, claim verdicts and downloads, and (with ours) the
    trend view; record the verdicts.

    With ``ours=None`` (nothing run yet) the ours side is empty and every claim is
    "not run"; nothing is recorded then. ``noise`` (seed spread and chance level of our
    runs; one for the table or one per row) makes claims decided within noise ``inconclusive``
    and gives the trend view its error bars.
    """
    from IPython.display import display

    results = check_claims(table, ours, noise)
    display(comparison_html(table, ours, provenance, noise, results))
    if ours:
        data = trend_data(table, ours, noise)
        if data:
            import matplotlib.pyplot as plt

            fig = trend_figure(table, data, provenance.profile)
            display(fig)
            plt.close(fig)
            display(trend_caption(table, data, noise))
        record_verdicts(table, results, provenance, noise)
    return results


def show_paper_tables(paper: str, profile: str) -> None:
    """Every transcribed table of ``paper`` with an empty ours side (nothing run yet)."""
    from IPython.display import display

    from . import tables_of

    for table in tables_of(paper):
        display(HtmlBlock(f"<h3>Table {table.number}</h3>", f"Table {table.number}"))
        show_comparison(table, None, Provenance(dataset="not run yet", profile=profile))


__all__ = ["show_paper_tables", "compare_table", "comparison_frames", "comparison_html", "claims_frame",
           "show_comparison", "Provenance", "record_verdicts", "noise_sentence", "load_verdicts", "verdicts_path",
           "frame_html", "show_frame", "install_display", "profile_banner", "page_header", "shown_verdict",
           "kendall_tau", "trend_data", "typeset", "anchor", "NA_PROFILES"]
