"""The book: a strict build of the smoke-executed notebooks, then every page in Chromium.

``make test`` executes the notebooks (smoke profile) into ``build/book-smoke`` before
pytest runs; this module builds that book with warnings as errors and opens each page of
the table of contents in headless Debian Chromium, checking that it loads; that MathJax
(served from the book's own copy) typeset every formula and left no raw ``\\(``; that no
table or claim cell is elided with "…"; that no code input is visible unless toggled open;
that every figure decodes and is not a single colour; and that no internal link or anchor
is broken. One screenshot per page goes to ``build/screenshots/`` for review.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from instseg_lib.book import BookError, build, toc_notebooks, toc_pages
from instseg_lib.paths import REPO_ROOT

SMOKE_BOOK = Path(os.environ.get("INSTSEG_SMOKE_BOOK", REPO_ROOT / "build" / "book-smoke"))
if not SMOKE_BOOK.is_absolute():
    SMOKE_BOOK = REPO_ROOT / SMOKE_BOOK

CHECK_SCRIPT = """
<script>
window.addEventListener('load', function () {
  function visible(el) {
    if (el.closest('details:not([open])')) { return false; }
    if (el.checkVisibility) { return el.checkVisibility({contentVisibilityAuto: true, visibilityProperty: true}); }
    return el.getClientRects().length > 0;
  }
  function done(mathjax) {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.getAttribute('src'); });
    var text = document.body.innerText;
    var cells = Array.prototype.slice.call(document.querySelectorAll('td, th'));
    // Elision as pandas prints it: a cell that is, or ends in, an ellipsis (a quotation may hold one).
    var elided = cells.filter(function (c) { return /(\\u2026|\\.\\.\\.)\\s*$/.test(c.textContent); })
                      .map(function (c) { return c.textContent.slice(0, 80); });
    var inputs = Array.prototype.slice.call(document.querySelectorAll('.cell_input'));
    var shownCode = inputs.filter(visible).map(function (c) { return c.textContent.slice(0, 80); });
    var out = document.createElement('pre');
    out.id = '__pagecheck__';
    out.textContent = JSON.stringify({
      images: imgs.map(function (i) { return i.getAttribute('src'); }), broken: broken,
      mathjax: mathjax,
      math_sources: document.querySelectorAll('script[type^="math/tex"]').length,
      math_rendered: document.querySelectorAll('.MathJax_CHTML').length,
      math_spans: document.querySelectorAll('.math').length,
      raw_math: text.indexOf('\\\\(') >= 0 || text.indexOf('\\\\[') >= 0,
      math_errors: text.indexOf('Math Processing Error') >= 0,
      elided: elided, code_inputs: inputs.length, visible_code: shownCode});
    document.body.appendChild(out);
  }
  if (window.MathJax && window.MathJax.Hub) {
    MathJax.Hub.Register.StartupHook('End', function () { MathJax.Hub.Queue(function () { done(true); }); });
  } else {
    setTimeout(function () { done(false); }, 0);
  }
});
</script>
"""
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"


def _executed() -> bool:
    return all((SMOKE_BOOK / "notebooks" / f"{n}.ipynb").exists() for n in toc_notebooks())


@pytest.fixture(scope="module")
def html_root() -> Path:
    if not _executed():
        pytest.skip(f"smoke notebooks are not executed in {SMOKE_BOOK}: run `make test`")
    try:
        index = build(SMOKE_BOOK, strict=True)
    except BookError as exc:
        pytest.fail(str(exc))
    return index.parent


def test_strict_build_has_every_toc_page(html_root: Path):
    for page in toc_pages():
        assert (html_root / f"{page}.html").exists(), page


def _text(page: Path) -> str:
    import html as html_lib

    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text())))


def test_front_page_dashboard_links_every_table_and_counts_this_builds_claims(html_root: Path):
    """The intro pastes the dashboard glued by `what_reproduced`: one line per table, a link to
    the page that shows it, the build's profile, and smoke verdicts printed as n/a."""
    from instseg_lib.papers import TABLES
    from instseg_lib.papers.index import dashboard_frame
    from instseg_lib.papers.render import load_verdicts

    page = html_root / "intro.html"
    raw = page.read_text()
    text = _text(page)
    assert "Smoke build: the numbers mean nothing" in text  # the profile banner
    assert "This build." in text and "Profile smoke" in text
    table = re.search(r'<table class="instseg-table instseg-dashboard">(.*?)</table>', raw, re.S)
    assert table, "no dashboard on the front page"
    body = table.group(1)
    assert body.split("<tbody>")[1].count("<tr>") == len(TABLES) + 1  # one line per table, and the total
    recorded = {r["table"]: r for r in load_verdicts("smoke")}
    assert recorded, "the smoke build recorded no verdicts"
    hrefs = re.findall(r'<a href="([^"#]+)#([^"]+)"', body)
    assert len(hrefs) == len(TABLES)
    for key, rec in recorded.items():
        t = TABLES[key]
        assert (f"{rec['page']}.html", f"{t.paper}-table{t.number}") in hrefs, key
    for href, _ in hrefs:
        assert (html_root / href).exists(), href
    df = dashboard_frame("smoke")
    checked = int(df.iloc[-1]["checked on our numbers"])
    assert checked == sum(c["verdict"] != "not run" for r in recorded.values() for c in r["claims"]) > 0
    assert "n/a (smoke)" in body and ">reproduced<" not in body


def test_what_reproduced_lists_every_claim_grouped_and_linked(html_root: Path):
    from instseg_lib.papers import TABLES

    raw = (html_root / "notebooks" / "what_reproduced.html").read_text()
    claims = re.findall(r'<table class="instseg-table instseg-claims">(.*?)</table>', raw, re.S)
    n_rows = sum(c.count("<tr>") - 1 for c in claims)
    assert n_rows == sum(len(t.claims) for t in TABLES.values())
    assert len(re.findall(r"<h4><a href=", raw)) == len(TABLES)
    assert "not run" in raw and "n/a (smoke)" in raw


def test_pages_show_a_profile_badge_and_banner_not_the_parameters_cells(html_root: Path):
    page = html_root / "notebooks" / "wu2016_table1.html"
    text = _text(page)
    assert "profile smoke" in text and "Smoke build: the numbers mean nothing" in text
    assert 'profile = "cpu"' not in text and 'profile = "smoke"' not in text
    assert "Show code cell source" in text  # code is folded, with a toggle


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.check: str | None = None
        self._in_check = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a and a["id"]:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        self._in_check = a.get("id") == "__pagecheck__"

    def handle_data(self, data):
        if self._in_check:
            self.check = (self.check or "") + data

    def handle_endtag(self, tag):
        self._in_check = False


def _ids_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        cache[path] = set(re.findall(r'\sid="([^"]+)"', path.read_text(errors="replace")))
    return cache[path]


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=15000"]


def _dump_dom(chromium: str, url: str, profile_dir: Path) -> str:
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed on {url}: {proc.stderr[-2000:]}"
    return proc.stdout


def _screenshot(chromium: str, url: str, profile_dir: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--window-size=1280,2000",
           f"--screenshot={out}", url]
    subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _png_outputs(notebook: Path) -> int:
    nb = json.loads(notebook.read_text())
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))


def _figure_problem(path: Path) -> str | None:
    """Why a figure file is not a readable figure: it does not decode, or is one colour."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            extrema = im.convert("RGB").getextrema()
    except Exception as exc:  # noqa: BLE001 - any decoding failure is the finding
        return f"does not decode ({exc})"
    if all(lo == hi for lo, hi in extrema):
        return "is a single colour"
    return None


def test_every_page_loads_in_chromium_with_math_figures_folded_code_and_links(html_root: Path, tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium); .ci/run installs it")
    site = tmp_path / "site"
    shutil.copytree(html_root, site)
    ids_cache: dict[Path, set[str]] = {}
    problems: list[str] = []
    math_pages = 0
    for page in toc_pages():
        path = site / f"{page}.html"
        text = path.read_text()
        _screenshot(chromium, path.as_uri(), tmp_path / "chromium-profile", SCREENSHOTS / f"{page.replace('/', '_')}.png")
        path.write_text(text.replace("</body>", CHECK_SCRIPT + "</body>"))
        parser = _Links()
        parser.feed(_dump_dom(chromium, path.as_uri(), tmp_path / "chromium-profile"))
        if parser.check is None:
            problems.append(f"{page}: the page did not finish loading")
            continue
        check = json.loads(parser.check)
        if check["broken"]:
            problems.append(f"{page}: broken images {check['broken']}")
        nb = SMOKE_BOOK / f"{page}.ipynb"
        if nb.exists() and len(check["images"]) < _png_outputs(nb):
            problems.append(f"{page}: {len(check['images'])} images shown, notebook has {_png_outputs(nb)} figures")
        for src in check["images"]:
            why = _figure_problem((path.parent / unquote(urlsplit(src).path)).resolve()) if src else "has no src"
            if why:
                problems.append(f"{page}: figure {src} {why}")
        if not check["mathjax"]:
            problems.append(f"{page}: MathJax did not load")
        if check["math_spans"]:
            math_pages += 1
            if check["math_rendered"] < check["math_sources"] or check["math_rendered"] == 0:
                problems.append(f"{page}: MathJax rendered {check['math_rendered']} of {check['math_sources']} formulas")
        if check["raw_math"] or check["math_errors"]:
            problems.append(f"{page}: raw TeX or a MathJax error is visible")
        if check["elided"]:
            problems.append(f"{page}: elided cells {check['elided'][:3]}")
        if check["visible_code"]:
            problems.append(f"{page}: code input visible without toggling: {check['visible_code'][:2]}")
        for href in parser.hrefs:
            parts = urlsplit(href)
            if parts.scheme in {"http", "https", "mailto", "javascript", "data"} or parts.netloc:
                continue
            target = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            if parts.scheme == "file":
                target = Path(unquote(parts.path))
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{page}: broken link {href}")
            elif parts.fragment and target.suffix == ".html":
                ids = parser.ids if target == path else _ids_of(target, ids_cache)
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{page}: broken anchor {href}")
    assert math_pages > 0, "no page has math: the MathJax checks checked nothing"
    assert not problems, "\n".join(problems)
