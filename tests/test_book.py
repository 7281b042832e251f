"""The book: a strict build of the smoke-executed notebooks, then every page in Chromium.

``make test`` executes the notebooks (smoke profile) into ``build/book-smoke`` before
pytest runs; this module builds that book with warnings as errors and opens each page of
the table of contents in headless Debian Chromium, checking that it loads, that its
figures decode, and that no internal link or anchor is broken.
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
  setTimeout(function () {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.getAttribute('src'); });
    var out = document.createElement('pre');
    out.id = '__pagecheck__';
    out.textContent = JSON.stringify({images: imgs.length, broken: broken});
    document.body.appendChild(out);
  }, 0);
});
</script>
"""


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


def test_front_page_shows_the_verdict_summary_of_this_build(html_root: Path):
    """The intro pastes the table glued by `what_reproduced`, so it matches the recorded verdicts."""
    from instseg_lib.papers.index import verdict_summary

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (html_root / "intro.html").read_text()))
    summary = verdict_summary("smoke")
    assert "inconclusive" in text and "not reproduced" in text
    wu = " ".join(str(int(v)) for v in summary.loc["wu2016"])
    assert f"wu2016 {wu}" in text, wu


def test_pages_show_the_injected_profile_not_the_template_cell(html_root: Path):
    import html as html_lib

    page = html_root / "notebooks" / "wu2016_table1.html"
    text = html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text())))
    assert 'profile = "smoke"' in text
    assert 'profile = "cpu"' not in text


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


def _dump_dom(chromium: str, url: str, profile_dir: Path) -> str:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile_dir}", "--virtual-time-budget=10000", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed on {url}: {proc.stderr[-2000:]}"
    return proc.stdout


def _png_outputs(notebook: Path) -> int:
    nb = json.loads(notebook.read_text())
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))


def test_every_page_loads_in_chromium_with_figures_and_links(html_root: Path, tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium); .ci/run installs it")
    site = tmp_path / "site"
    shutil.copytree(html_root, site)
    ids_cache: dict[Path, set[str]] = {}
    problems: list[str] = []
    for page in toc_pages():
        path = site / f"{page}.html"
        text = path.read_text()
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
        if nb.exists() and check["images"] < _png_outputs(nb):
            problems.append(f"{page}: {check['images']} images shown, notebook has {_png_outputs(nb)} figures")
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
    assert not problems, "\n".join(problems)
