"""Render a built book's pages in headless Chromium and list what a reader would see wrong.

Used by ``tests/test_book_browser.py``. Each page is served over HTTP from the build folder (as a
static host would) and rendered in Debian's ``chromium`` (``/usr/bin/chromium``) driven by Playwright,
with the flags of a machine whose network is closed and an empty profile. Requests to any other host
are refused and reported: the book must render offline. Per page it checks

* **equations**: every ``.math`` element typeset by MathJax, and no raw TeX (``\\frac``, ``\\[``,
  ``$$``, ...) in the visible text outside code;
* **console**: no error logged, no uncaught exception, no failed local request;
* **images**: each loaded, and shown at least ``MIN_SCALE`` of its drawn width unless its caption says
  the figure can be enlarged;
* **width**: no visible element reaching past the right edge of the text column, and none that
  scrolls sideways;

and writes a full-page screenshot of every page, and a ``report.txt``, into a folder a reviewer opens.
"""
from __future__ import annotations

import functools
import http.server
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# A closed network and a clean profile: nothing in the background may try to reach the internet.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
MIN_SCALE = 0.7
MATH_TIMEOUT_MS = 20_000
PAGE_TIMEOUT_MS = 180_000  # generous: a shared, busy CI machine renders a long chapter slowly

# Everything measured inside the page, in one script (returns a list of problems).
PAGE_CHECKS = r"""
async ({minScale}) => {
  const problems = [];
  const visible = (el) => el.checkVisibility ? el.checkVisibility() : !!el.offsetParent;
  // images: load the lazy ones too, then check each
  const images = [...document.querySelectorAll('img')];
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  for (const img of images) {
    const name = (img.getAttribute('src') || '').split('/').pop();
    if (!img.complete || img.naturalWidth === 0) { problems.push(`image not loaded: ${name}`); continue; }
    if (!visible(img)) continue;
    const shown = img.getBoundingClientRect().width;
    const figure = img.closest('figure');
    const caption = figure ? (figure.querySelector('figcaption') || {}).textContent || '' : '';
    if (shown < minScale * img.naturalWidth && !/enlarge/i.test(caption)) {
      problems.push(`image ${name} shown at ${Math.round(shown)} px of its ${img.naturalWidth} px ` +
                    `(${Math.round(100 * shown / img.naturalWidth)}%)`);
    }
  }
  // equations: each typeset, and no TeX left in the visible text
  const maths = [...document.querySelectorAll('.math')];
  const untypeset = maths.filter(m => !m.querySelector('mjx-container'));
  if (untypeset.length) problems.push(`${untypeset.length} of ${maths.length} equation(s) not typeset, e.g. ` +
                                      JSON.stringify(untypeset[0].textContent.trim().slice(0, 60)));
  const skip = 'pre, code, script, style, mjx-container, .highlight, textarea, .linscale-raw';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const tex = /(\\(frac|mathrm|text|left|right|begin|end|alpha|beta|qquad|cdot|sum|log)\b|\\\[|\\\(|\$\$)/;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip) || !visible(parent)) continue;
    const match = node.textContent.match(tex);
    if (match) {
      const at = node.textContent.indexOf(match[0]);
      problems.push(`raw TeX in the text: ${JSON.stringify(node.textContent.slice(Math.max(0, at - 30), at + 40))}`);
      break;
    }
  }
  // width: nothing past the column's right edge, nothing scrolling sideways
  const column = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const right = column.getBoundingClientRect().right;
  const reported = new Set();
  const describe = (el) => {
    const cls = (el.getAttribute('class') || '').split(/\s+/).filter(Boolean).slice(0, 2).join('.');
    const inCell = el.closest('.cell') ? ' in a cell' : '';
    const text = (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 50);
    return `<${el.tagName.toLowerCase()}${cls ? '.' + cls : ''}>${inCell} ${JSON.stringify(text)}`;
  };
  for (const el of column.querySelectorAll('*')) {
    if (!visible(el) || [...reported].some(r => r.contains(el))) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width === 0) continue;
    const style = getComputedStyle(el);
    const scrolls = ['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
    if (rect.right > right + 1) {
      problems.push(`wider than the column by ${Math.round(rect.right - right)} px: ${describe(el)}`);
      reported.add(el);
    } else if (scrolls) {
      problems.push(`scrolls sideways (${el.scrollWidth} px in ${el.clientWidth} px): ${describe(el)}`);
      reported.add(el);
    }
  }
  return problems;
}
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test output lists problems, not requests
        pass


@contextmanager
def serve(folder: Path):
    """Serve ``folder`` on 127.0.0.1 (a free port) for the duration; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def pages(html_dir: Path) -> list[str]:
    """The book's pages (paths relative to ``html_dir``), without the theme's and the sources' files and
    without pages that only redirect (Jupyter Book's index.html sends the reader to the root page)."""
    import re

    found = []
    for path in Path(html_dir).rglob("*.html"):
        rel = path.relative_to(html_dir)
        if {"_static", "_sources", "_images"} & set(rel.parts):
            continue
        if re.search(r'<meta http-equiv="refresh"', path.read_text(errors="replace")[:2000], re.IGNORECASE):
            continue
        found.append(str(rel))
    return sorted(found)


def check_book(html_dir: Path, screenshots: Path, chromium: Path = CHROMIUM, min_scale: float = MIN_SCALE,
               only: list[str] | None = None, math_timeout_ms: int = MATH_TIMEOUT_MS) -> dict[str, list[str]]:
    """Render every page (or ``only`` those) and return {page: problems}; screenshots and ``report.txt``
    go to ``screenshots`` (emptied first)."""
    from playwright.sync_api import sync_playwright

    html_dir, screenshots = Path(html_dir), Path(screenshots)
    screenshots.mkdir(parents=True, exist_ok=True)
    for old in screenshots.glob("*.png"):
        old.unlink()
    results: dict[str, list[str]] = {}
    with serve(html_dir) as base, sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path=str(chromium), headless=True,
                                                       args=FLAGS, viewport=VIEWPORT)
        try:
            outside: list[str] = []

            def route(request_route):
                if request_route.request.url.startswith(base):
                    request_route.continue_()
                else:
                    outside.append(request_route.request.url)
                    request_route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
            for name in only or pages(html_dir):
                problems: list[str] = []
                outside.clear()
                on_console = lambda m, problems=problems: m.type == "error" and problems.append(f"console error: {m.text}")
                on_error = lambda e, problems=problems: problems.append(f"uncaught exception: {e}")
                on_failed = lambda r, problems=problems: problems.append(f"request failed: {r.url}")
                page.on("console", on_console)
                page.on("pageerror", on_error)
                page.on("requestfailed", on_failed)
                try:
                    page.goto(f"{base}/{name}", wait_until="load")
                    if page.evaluate("() => document.querySelectorAll('.math').length") > 0:
                        try:
                            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                                   timeout=math_timeout_ms)
                            page.evaluate("() => MathJax.startup.promise")
                        except Exception:  # noqa: BLE001 - reported below as untypeset equations
                            problems.append("MathJax did not start")
                    problems += page.evaluate(PAGE_CHECKS, {"minScale": min_scale})
                    page.screenshot(path=str(screenshots / (name.replace("/", "__").removesuffix(".html") + ".png")),
                                    full_page=True)
                except Exception as err:  # noqa: BLE001 - one page that fails to render is one problem
                    problems.append(f"could not be rendered: {str(err).splitlines()[0]}")
                page.remove_listener("console", on_console)
                page.remove_listener("pageerror", on_error)
                page.remove_listener("requestfailed", on_failed)
                problems += [f"request to another host (the book must work offline): {url}" for url in outside]
                # a refused outside request also shows as a failed request and a console error: keep one line
                problems = [q for q in problems if not any(url in q for url in outside)
                            or q.startswith("request to another host")]
                results[name] = problems
        finally:
            context.close()
    lines = [f"{name}: {'ok' if not problems else ''}" + "".join(f"\n  - {q}" for q in problems)
             for name, problems in results.items()]
    (screenshots / "report.txt").write_text(f"{html_dir}\n" + "\n".join(lines) + "\n")
    return results
