"""The chat app in a real headless Chromium (Debian ``chromium`` driven by Playwright).

A person's path through the app: type a question, watch the steps and the answer stream in,
see the trace picture, click a citation chip, read the cited chunk. Screenshots of each stage
are saved under ``test-artifacts/ui/`` (gitignored) for a human to look at.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from ui_doubles import DEMO_QUESTION

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Debian chromium binary on PATH (scripts/test.sh installs it: apt-get install chromium)")
    return path


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    playwright = pytest.importorskip("playwright.sync_api")
    binary = _chromium()
    with playwright.sync_playwright() as p:
        # Playwright gives the browser a fresh temporary profile (its own --user-data-dir)
        browser = p.chromium.launch(executable_path=binary, headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        requested: list[str] = []
        pg.on("request", lambda req: requested.append(req.url))
        pg.requested = requested  # type: ignore[attr-defined]
        yield pg
        browser.close()


def test_a_person_asks_watches_it_stream_and_opens_a_citation(live_app, page) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    live_app.llm.delay_s = 0.12  # slow enough to see the answer arrive word by word
    try:
        page.goto(live_app.url)
        # before any question: a hint where the trace will be, no empty source or trace widgets
        page.locator("#trace-hint").get_by_text("The trace of an answer appears here").wait_for()
        assert not page.locator("#citation-chips").is_visible() and not page.locator("#trace-plot").is_visible()
        assert "index demo-index" in page.locator("#chat").inner_text()
        page.screenshot(path=ARTIFACTS / "00-empty.png", full_page=True)
        page.locator("#question textarea").fill(DEMO_QUESTION)
        page.locator("#question textarea").press("Enter")

        # the agent's steps appear while it works, one line each, under a "Working: ..." title
        page.get_by_text("Working:", exact=False).first.wait_for()
        page.locator("#chat").get_by_text("navigating level", exact=False).first.wait_for()
        page.screenshot(path=ARTIFACTS / "01-steps-streaming.png", full_page=True)

        # the answer streams: sample the last bot message until the trace picture arrives
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not page.locator("#trace-plot img").count():
            text = page.locator("#chat").inner_text()
            if "From the documentation" in text:
                seen.append(text.split("From the documentation", 1)[1])
                if len(seen) == 2:
                    page.screenshot(path=ARTIFACTS / "02-answer-streaming.png", full_page=True)
            time.sleep(0.1)
        page.locator("#trace-plot img").wait_for()
        final = page.locator("#chat").inner_text().split("From the documentation", 1)[1]
        partial = [s for s in seen if s.strip() and len(s.strip()) < len(final.strip())]
        assert partial, f"no partial answer was ever shown: {seen[-3:]}"
        assert all(final.startswith(p.rstrip()) for p in partial)
        assert "[1]" in final and "Agent steps" in page.locator("#chat").inner_text()

        # the trace picture is a real rendered image, with the score table beside it
        size = page.locator("#trace-plot img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size[0] > 400 and size[1] > 200
        assert page.locator("#steps-table").get_by_text("calibrated").count() >= 1
        # the embedding scorer gives no reasoning: no empty column for it, and the legend says why
        assert page.locator("#steps-table").get_by_text("reasoning").count() == 0
        assert "No reasoning column" in page.locator("#scores-legend").inner_text()
        page.screenshot(path=ARTIFACTS / "03-answer-and-trace.png", full_page=True)

        # click the first citation chip: the chunk text and its place in the tree appear
        chip = page.locator("#citation-chips label").first
        assert chip.inner_text().startswith("[1]")
        chip.click()
        view = page.locator("#chunk-view")
        view.get_by_text("p = path relevance for this question").wait_for()
        text = view.inner_text()
        assert ".md#" in text and "p = " in text and "topics:" in text
        assert not any(line.lstrip().startswith("#") for line in text.splitlines())  # headings are rendered
        page.screenshot(path=ARTIFACTS / "04-citation-opened.png", full_page=True)
        page.locator("#trace-plot img").screenshot(path=ARTIFACTS / "05-trace-picture.png")

        # the other tabs, for a person to look at
        page.get_by_role("tab", name="Index").click()
        page.locator("#index-picker").wait_for()
        page.screenshot(path=ARTIFACTS / "06-index-tab.png", full_page=True)
        page.get_by_role("tab", name="Settings").click()
        page.get_by_text("Beam width B").wait_for()
        page.screenshot(path=ARTIFACTS / "07-settings-tab.png", full_page=True)
    finally:
        live_app.llm.delay_s = 0.02

    # nothing was fetched from anywhere but the app itself (fonts and scripts are local)
    hosts = {urlparse(u).hostname for u in page.requested if not u.startswith(("data:", "blob:"))}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts
