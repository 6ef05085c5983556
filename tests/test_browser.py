"""End to end: the web page in headless Chromium (Debian's) against the real server on a loopback port."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import DEMO, REPO, free_port

sys.path.insert(0, str(REPO / "scripts"))
from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium) for the browser test"
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")


@contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yields the base URL."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{srv.config.port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, real_encoders):
    from mmrec import Engine

    db = tmp_path_factory.mktemp("browser") / "db"
    Engine(str(db)).ingest(DEMO)
    yield db
    shutil.rmtree(db, ignore_errors=True)


@pytest.fixture(scope="module")
def server(demo_db):
    """The real app on a fresh demo database, open (no API key)."""
    from mmrec.service import create_app

    with running(create_app(str(demo_db))) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_browse_search_similar_like_and_recommendations(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.set_default_timeout(15_000)
    expect = sync_api.expect

    # The catalog grid with thumbnails that really load, and audio players.
    page.goto(server + "/")
    expect(page.locator("#results-sub")).to_have_text("45 items")
    first = page.locator("#grid .card img").first
    expect(first).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#grid .card img'); return i.complete && i.naturalWidth > 0; }"
    )
    assert page.locator("#grid .card audio").count() > 10

    # Keyboard: tab onto the Cow card and press Enter → items similar to it.
    cow = page.locator(".card", has_text="Cow").locator(".card-main")
    cow.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#focus h3")).to_have_text("Cow")
    expect(page.locator("#results-title")).to_have_text("Similar to Cow")
    expect(page.locator("#grid .card")).to_have_count(12)
    similar = page.locator("#grid .card .title").all_inner_texts()
    assert "Cow" not in similar

    # The modality switch re-runs the search on sounds only.
    page.get_by_text("Sounds", exact=True).click()
    expect(page.locator("#results-sub")).to_contain_text("searching sounds")

    # A text search.
    page.get_by_label("Describe what you are looking for").fill("an owl hooting at night")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results-title")).to_contain_text("an owl hooting at night")
    page.get_by_text("Everything", exact=True).click()
    expect(page.locator("#grid .card .title").first).to_have_text("Owl")

    # A new user gets cold-start recommendations; liking items changes them, with explanations.
    page.get_by_label("User", exact=True).fill("browser-user")
    page.get_by_role("button", name="Show").click()
    recs = page.locator("#recs")
    expect(recs).to_have_attribute("data-strategy", "newest")
    before = recs.locator(".rec-title").all_inner_texts()
    page.locator(".card", has_text="Owl").first.get_by_role("button", name="Like Owl").click()
    expect(recs).to_have_attribute("data-strategy", "profile")
    expect(recs.locator(".why").first).to_contain_text("Owl")
    expect(recs.locator(".bars").first).to_be_visible()
    after = recs.locator(".rec-title").all_inner_texts()
    assert after != before
    top = recs.locator(".rec").first
    top_title = top.locator(".rec-title").inner_text()
    top.get_by_role("button", name="Like").click()
    expect(recs.locator(".rec").first.locator(".rec-title")).not_to_have_text(top_title)
    assert not problems, problems
    page.close()


def test_page_is_usable_on_a_phone_width_screen(server, browser):
    page = browser.new_page(viewport={"width": 375, "height": 740})
    page.goto(server + "/")
    sync_api.expect(page.locator("#grid .card").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"horizontal scrolling on a phone: {width}px"
    page.close()


def test_private_server_asks_for_the_key_and_shows_media_with_it(demo_db, browser):
    from mmrec.service import create_app

    key = "browser-key"
    with running(create_app(str(demo_db), api_key=key, private=True)) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        # Without the key the catalog is refused and the key field opens.
        sync_api.expect(page.locator("#key-box")).to_have_attribute("open", "")
        sync_api.expect(page.locator("#status")).to_contain_text("API key")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Save").click()
        sync_api.expect(page.locator("#results-sub")).to_have_text("45 items")
        # <img> cannot send the header: thumbnails come from blob: URLs fetched with the key.
        page.wait_for_function(
            "() => { const i = document.querySelector('#grid .card img'); "
            "return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; }"
        )
        assert page.evaluate("sessionStorage.getItem('mmrec-api-key')") == key
        page.close()


@pytest.mark.parametrize(("page_path", "rendered"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")])
def test_api_docs_render_offline_from_the_server_alone(server, browser, page_path, rendered):
    """Swagger UI and ReDoc render with every request to another host refused (as on a machine without internet)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []
    problems: list[str] = []

    def only_this_server(route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.set_default_timeout(30_000)
    page.goto(server + page_path)
    sync_api.expect(page.locator(rendered).first).to_be_visible()
    # The whole API is there: every path of the OpenAPI document is rendered.
    assert page.get_by_text("/users/{user_id}/recommendations").count() >= 1
    assert not elsewhere, f"the docs page fetched from other hosts: {elsewhere}"
    # The page's CSP makes the browser refuse anything from elsewhere before a request is made; the one thing
    # either renderer tries is ReDoc's hard-coded sidebar logo (its image then hides itself).
    blocked = [p for p in problems if "violates the following Content Security Policy" in p]
    assert all("https://cdn.redoc.ly/redoc/logo-mini.svg" in p for p in blocked), blocked
    assert not [p for p in problems if p not in blocked], problems
    page.close()
