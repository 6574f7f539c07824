"""Open the built book in headless Chromium and check what a reader would see.

    .venv/bin/python tools/browser_test.py _build/html      (or: make browser-test)

The site is served on 127.0.0.1. Every page of the book must load; every image on it must have
loaded (non-zero natural width); every chapter page must show at least one figure and one table;
every internal link must reach a page that exists, and its #anchor an element of that page; and
the search page must find a chapter. Exits non-zero, listing every failure, if any check fails.
Chromium and ChromeDriver are Debian's (/usr/bin/chromium, /usr/bin/chromedriver), or those that
$CHROME_BIN and $CHROMEDRIVER name.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

# Debian's Chromium and ChromeDriver unless $CHROME_BIN / $CHROMEDRIVER name others (GitHub's
# Ubuntu runners ship Google Chrome and a matching driver instead).
CHROMIUM = os.environ.get("CHROME_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# Flags for a closed network: no background connections, no first-run work.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
SKIP = {"genindex.html", "search.html", "py-modindex.html"}
CHAPTER = re.compile(r"^\d\d_.*\.html$")


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # no access log on stderr
        pass


@contextmanager
def browser() -> Iterator[webdriver.Chrome]:
    """A headless Chromium driven by ChromeDriver, with a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(60)
        try:
            yield driver
        finally:
            driver.quit()


def book_pages(html: Path) -> list[str]:
    """The site's pages, relative to its root: index.html and every page under book/."""
    pages = [p.relative_to(html).as_posix() for p in sorted((html / "book").glob("*.html"))]
    return ["index.html"] + [p for p in pages if Path(p).name not in SKIP]


def check_page(driver: webdriver.Chrome, url: str) -> list[str]:
    """Load one page; report missing title, broken images, and chapters without figure or table."""
    driver.get(url)
    problems = []
    if not driver.title or "404" in driver.title:
        problems.append(f"{url}: no title ({driver.title!r})")
    deadline = time.time() + 15
    while time.time() < deadline and not driver.execute_script(
            "return Array.from(document.images).every(i => i.complete)"):
        time.sleep(0.2)
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !i.naturalWidth).map(i => i.src)")
    problems += [f"{url}: image did not load: {src}" for src in broken]
    if CHAPTER.match(Path(urlparse(url).path).name):
        main = driver.find_element(By.CSS_SELECTOR, "main")
        if not main.find_elements(By.TAG_NAME, "img"):
            problems.append(f"{url}: a chapter without a figure")
        if not main.find_elements(By.TAG_NAME, "table"):
            problems.append(f"{url}: a chapter without a table")
    return problems


def internal_links(driver: webdriver.Chrome, base: str) -> set[str]:
    """The links of the loaded page that stay on the site (absolute URLs, anchors kept)."""
    hrefs = driver.execute_script("return Array.from(document.links).map(a => a.href)")
    return {h for h in hrefs if h.startswith(base)}


@functools.lru_cache(maxsize=None)
def _fetch(url: str) -> str | None:
    """The text of a page of the site, or None if it cannot be fetched."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def check_link(link: str) -> str | None:
    """None if ``link`` reaches an existing page (and anchor), else what is wrong."""
    page, anchor = urldefrag(link)
    text = _fetch(page)
    if text is None:
        return f"broken link: {link}"
    if anchor and not re.search(rf'id=["\']{re.escape(anchor)}["\']', text):
        return f"missing anchor: {link}"
    return None


def check_search(driver: webdriver.Chrome, base: str, query: str = "padding") -> list[str]:
    """The search page must list at least one chapter for ``query``."""
    driver.get(urljoin(base, f"search.html?q={query}"))
    deadline = time.time() + 30
    while time.time() < deadline:
        hits = driver.execute_script(
            "return Array.from(document.querySelectorAll('#search-results a')).map(a => a.href)")
        if any(CHAPTER.match(Path(urlparse(h).path).name) for h in hits):
            return []
        time.sleep(0.5)
    return [f"search for {query!r} found no chapter"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path, help="the built site, e.g. _build/html")
    args = parser.parse_args()
    if not (args.html / "index.html").exists():
        sys.exit(f"{args.html / 'index.html'} is missing: build the book first (make book)")
    problems, links = [], set()
    with serve(args.html) as base, browser() as driver:
        pages = book_pages(args.html)
        for page in pages:
            problems += check_page(driver, urljoin(base, page))
            links |= internal_links(driver, base)
        problems += [p for p in map(check_link, sorted(links)) if p]
        problems += check_search(driver, base)
    print(f"{len(pages)} pages, {len(links)} internal links checked")
    if problems:
        sys.exit("browser test failed:\n  " + "\n  ".join(problems))
    print("browser test passed")


if __name__ == "__main__":
    main()
