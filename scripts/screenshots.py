"""Take the web page screenshots in docs/ with Playwright and Debian's Chromium.

Builds a fresh demo database (the bundled catalog and a user ``alice`` with a
few likes, so explanations show), starts ``mmrec serve`` on it, and saves:

* ``docs/screenshot-grid.png``: the catalog grid with the recommendations panel;
* ``docs/screenshot-similar.png``: an item clicked, with its similar items;
* ``docs/screenshot-recommendations.png``: alice's recommendations with explanations and modality bars;
* ``docs/screenshot-phone.png``: the page on a phone-width screen.

Usage::

    apt-get install chromium            # Playwright's own browser download is not needed
    python scripts/screenshots.py [--out docs] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chromium import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "assets" / "demo"
USER = "alice"
HISTORY = [
    ("animals/cow", "like"),
    ("animals/sheep", "like"),
    ("animals/horse", "view"),
    ("music/violin", "like"),
    ("music/cello", "like"),
    ("food/pizza", "skip"),
]


def build_db(path: Path) -> None:
    """Ingest the demo catalog and record alice's history (fixed times: repeatable).

    The fusion stays untrained (45 items are too few to train it), so the attention weights are equal
    shares of each item's modalities.
    """
    from mmrec import Engine

    engine = Engine(str(path))
    engine.ingest(DEMO)
    for i, (item, event) in enumerate(HISTORY):
        engine.interact(USER, item, event, at=1_760_000_000 + 3600 * i)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mmrec serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).json().get("ready"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("mmrec serve did not become ready")


def wait_images(page, selector: str) -> None:
    """Wait until the images in view under ``selector`` have loaded."""
    page.wait_for_function(
        """(sel) => Array.from(document.querySelectorAll(sel + ' img')).filter(i => {
                const r = i.getBoundingClientRect();
                return r.top < window.innerHeight && r.bottom > 0;
            }).every(i => i.complete && i.naturalWidth > 0)""",
        arg=selector,
        timeout=20_000,
    )


def shoot(base: str, out: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900}, color_scheme="light")
        page.add_init_script(f"localStorage.setItem('mmrec-user', {USER!r})")
        page.goto(base + "/")
        page.wait_for_selector("#grid .card img")
        page.wait_for_selector("#recs .rec .why")
        wait_images(page, "body")
        page.screenshot(path=str(out / "screenshot-grid.png"))
        print(f"saved {out / 'screenshot-grid.png'}", flush=True)

        page.locator(".card", has_text="Owl").locator(".card-main").click()
        page.wait_for_selector("#focus:not([hidden]) h3")
        page.wait_for_function("document.querySelector('#results-title').textContent.includes('Owl')")
        page.evaluate("window.scrollTo(0, 0)")
        page.mouse.move(5, 5)  # no hover highlight in the picture
        wait_images(page, "body")
        page.screenshot(path=str(out / "screenshot-similar.png"))
        print(f"saved {out / 'screenshot-similar.png'}", flush=True)

        page.locator(".foryou").screenshot(path=str(out / "screenshot-recommendations.png"))
        print(f"saved {out / 'screenshot-recommendations.png'}", flush=True)

        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, color_scheme="light")
        phone.goto(base + "/")
        phone.wait_for_selector("#grid .card img")
        wait_images(phone, "body")
        phone.screenshot(path=str(out / "screenshot-phone.png"))
        print(f"saved {out / 'screenshot-phone.png'}", flush=True)
        browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs"), help="folder for the PNGs (default docs/)")
    ap.add_argument("--chromium", default=str(CHROMIUM), help="Chromium executable")
    args = ap.parse_args()
    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium}; install it with `apt-get install chromium`", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="mmrec-shots-"))
    proc = None
    try:
        db = tmp / "db"
        build_db(db)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        mmrec = Path(sys.executable).with_name("mmrec")
        cmd = [str(mmrec), "serve", "--db", str(db), "--port", str(port), "--log-level", "warning"]
        proc = subprocess.Popen(cmd, env={**os.environ, "MMREC_API_KEY": ""})
        wait_ready(base, proc)
        shoot(base, out, args.chromium)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
