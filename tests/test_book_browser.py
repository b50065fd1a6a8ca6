"""The built book in a browser, as its readers meet it: every page rendered in headless Chromium.

Checks each page of the book (``tests/browser_check.py``): equations typeset by the local MathJax with
no raw TeX left, no console error and no request to another host (the book must work offline), every
image loaded and shown at no less than 70% of its drawn width, nothing wider than the text column or
scrolling sideways. Screenshots of every page and a ``report.txt`` go to ``_build/browser-check/<book>/``
(or ``$LINSCALE_SCREENSHOTS``) for a reviewer to open.

The book checked is the smoke book that ``tests/test_book.py`` builds, or, with
``LINSCALE_BOOK_HTML=_build/html``, an already built one (for example the book of the committed results
that ``python3 tasks.py book`` makes). Needs Debian's ``chromium`` (``/usr/bin/chromium``, or
``$LINSCALE_CHROMIUM``) and the ``playwright`` package; skipped, saying which is missing, without them.
CI installs Chromium (``.ci/run``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import browser_check
from linscale import book


def _missing() -> str | None:
    chromium = Path(os.environ.get("LINSCALE_CHROMIUM", browser_check.CHROMIUM))
    if not chromium.exists():
        return (f"no Chromium at {chromium}: install Debian's package (apt-get install chromium) or set "
                f"LINSCALE_CHROMIUM; .ci/run installs it in CI")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt -c constraints.txt)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _chromium() -> Path:
    return Path(os.environ.get("LINSCALE_CHROMIUM", browser_check.CHROMIUM))


def _screenshots(name: str) -> Path:
    return Path(os.environ.get("LINSCALE_SCREENSHOTS", book.ROOT / "_build" / "browser-check")) / name


@pytest.fixture(scope="module")
def html_dir(request) -> Path:
    given = os.environ.get("LINSCALE_BOOK_HTML")
    if given:
        folder = Path(given).resolve()
        assert (folder / "index.html").exists(), f"LINSCALE_BOOK_HTML={given}: no built book there"
        return folder
    return request.getfixturevalue("built_book")["html"]


@pytest.mark.slow
def test_every_page_renders_offline_with_equations_images_and_no_overflow(html_dir):
    name = "given" if os.environ.get("LINSCALE_BOOK_HTML") else "smoke"
    shots = _screenshots(name)
    results = browser_check.check_book(html_dir, shots, chromium=_chromium())
    # the book of a study of real text has its own table of contents (and introduction)
    toc = book.TEXT_TOC if (html_dir / "intro_text.html").exists() else book.BOOK / "_toc.yml"
    assert len(results) >= len(book.toc_chapters(toc)) + 3, sorted(results)  # chapters, intro, glossary, bibliography
    problems = [f"{page}: {problem}" for page, found in results.items() for problem in found]
    assert not problems, f"{len(problems)} problem(s); screenshots and report in {shots}:\n" + "\n".join(problems)
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(
        page.replace("/", "__").removesuffix(".html") + ".png" for page in results)


def test_the_checker_sees_each_kind_of_problem(tmp_path):
    """The checker itself can fail: a page with raw TeX, an untypeset equation, a console error, a request
    to another host, a missing image, a shrunken image and an element wider than the column yields one
    problem each, and a clean page none."""
    import base64

    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    (tmp_path / "dot.png").write_bytes(png)
    wide = '<img src="wide.png" style="width:300px">'
    from matplotlib import pyplot as plt

    fig = plt.figure(figsize=(10, 1), dpi=100)  # 1000 px drawn, shown at 300 px
    fig.savefig(tmp_path / "wide.png")
    plt.close(fig)
    article = '<article class="bd-article" style="width:600px">{}</article>'
    (tmp_path / "bad.html").write_text(
        "<html><body>" + article.format(
            '<p>An equation \\frac{a}{b} left raw.</p><span class="math">\\(x\\)</span>'
            '<img src="missing.png">' + wide + '<div style="width:900px">a table too wide</div>'
            '<img src="https://example.org/x.png">'
            '<script>console.error("boom")</script>') + "</body></html>")
    (tmp_path / "good.html").write_text("<html><body>" + article.format('<p>Fine.</p><img src="dot.png">')
                                        + "</body></html>")
    results = browser_check.check_book(tmp_path, tmp_path / "shots", chromium=_chromium(), math_timeout_ms=2000)
    assert results["good.html"] == []
    bad = "\n".join(results["bad.html"])
    for expected in ("raw TeX in the text", "1 of 1 equation(s) not typeset", "console error: boom",
                     "request to another host (the book must work offline): https://example.org/x.png",
                     "image not loaded: missing.png", "image wide.png shown at 300 px of its 1000 px",
                     "wider than the column by 300 px"):
        assert expected in bad, (expected, bad)
    assert (tmp_path / "shots" / "bad.png").exists() and (tmp_path / "shots" / "report.txt").exists()
