"""The viewer and the HTML report in headless Chromium (`nox -s browser`).

Each test drives the real page over the DevTools protocol (tests/chromium.py),
asserts on the rendered DOM, and checks that the page asked for nothing but
itself. Screenshots go to GEMLIB_SCREENSHOTS when it is set (to look at them).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from chromium import Page, browser
from gemlib.analysis.report import html_report
from gemlib.analysis.stats import dataset_stats
from gemlib.analysis.summary import load_summary
from gemlib.analysis.viewer import build_viewer, write_viewer
from gemlib.pipeline.rundir import read_trajectories
from viewer_data import HOSTILE, NEEDLE, REASONING, make_run

pytestmark = pytest.mark.browser


async def _shot(page: Page, name: str, tmp_path: Path) -> None:
    folder = Path(os.environ.get("GEMLIB_SCREENSHOTS") or tmp_path)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    await page.screenshot(folder / f"{name}.png")


def _only_itself(page: Page, url: str) -> None:
    assert page.requests, "the page's own load is recorded"
    assert all(r.split("#")[0] == url.split("#")[0] for r in page.requests), page.requests


async def _set(page: Page, control: str, value: str) -> None:
    """Change a filter or type into the search box, and wait for the list to follow."""
    event = "input" if control == "search" else "change"
    await page.js(
        f"(() => {{ const c = document.getElementById({json.dumps(control)}); "
        f"c.value = {json.dumps(value)}; c.dispatchEvent(new Event('{event}')); }})()"
    )
    key = "q" if control == "search" else control.removeprefix("filter-")
    await page.wait_for(
        f"(new URLSearchParams(location.hash.slice(1)).get('{key}') || '') === {json.dumps(value)}"
    )


COUNT = "document.getElementById('count').textContent"


def test_the_viewer_shows_calls_flags_masks_and_filters(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    url = write_viewer(run).as_uri()

    async def scenario() -> None:
        async with browser() as page:
            await page.open(url)
            await page.wait_for("document.body.dataset.ready")
            assert await page.js(COUNT) == "22 of 22 items"
            assert await page.js("window.pwned === undefined"), "hostile text ran as code"

            # The funnel at the top, in pipeline order, with its drop reasons.
            stages = await page.js(
                "[...document.querySelectorAll('#funnel tr td:first-child')]"
                ".map(td => td.textContent)"
            )
            assert stages == ["writer", "rule_validator"]

            # A filter narrows the list: rejected only, then one rule.
            await _set(page, "filter-kind", "rejected")
            assert await page.wait_for(f"{COUNT}.startsWith('3 of')")
            await _set(page, "filter-rule", "ungrounded_argument")
            assert await page.wait_for(f"{COUNT}.startsWith('1 of')")

            # The rejected trajectory shows its problem at the message, highlighted.
            await page.js("document.querySelector('#list li').click()")
            await page.wait_for("!!document.querySelector('#detail .msg.flagged')")
            flagged = await page.js(
                "(() => { const m = document.querySelector('#detail .msg.flagged');"
                " m.scrollIntoView(); const s = getComputedStyle(m);"
                " return {id: m.id, text: m.innerText, outline: s.outlineColor,"
                " shown: m.getBoundingClientRect().height > 0}; })()"
            )
            assert flagged["id"] == "msg-2"
            assert "ungrounded_argument" in flagged["text"]
            assert "K-999" in flagged["text"]
            assert flagged["outline"] == "rgb(208, 86, 60)"
            assert flagged["shown"]
            await _shot(page, "viewer-flagged", tmp_path)

            # Search finds a known string among the kept trajectories.
            await _set(page, "filter-kind", "")
            await _set(page, "filter-rule", "")
            await _set(page, "search", NEEDLE)
            assert await page.wait_for(f"{COUNT}.startsWith('1 of')")
            await page.js("document.querySelector('#list li').click()")
            text = await page.wait_for("document.querySelector('#detail .conversation')?.innerText")
            assert NEEDLE in text

            # A tool call's arguments are visible, with the source beside the conversation.
            args = await page.js(
                "(() => { const a = document.querySelector('#detail .call-args');"
                " a.scrollIntoView(); const r = a.getBoundingClientRect();"
                " return {text: a.innerText, visible: r.height > 0 && r.width > 0}; })()"
            )
            assert json.loads(args["text"]) == {"code": "K-0"}
            assert args["visible"]
            source = await page.js("document.querySelector('#detail .source-text').innerText")
            assert NEEDLE in source
            # The reasoning behind a turn is there, folded, at its message.
            reasoning = await page.js(
                "[...document.querySelectorAll('#detail .msg details.reasoning')]"
                ".map(d => [d.closest('.msg').id, d.querySelector('pre').textContent])"
            )
            assert reasoning == [["msg-4", REASONING]]
            await _shot(page, "viewer-kept", tmp_path)

            # A masked turn is marked as such.
            await _set(page, "search", "masked order")
            assert await page.wait_for(f"{COUNT}.startsWith('1 of')")
            await page.js("document.querySelector('#list li').click()")
            masked = await page.wait_for(
                "[...document.querySelectorAll('#detail .msg.masked')].map(m => m.id)"
            )
            assert masked == ["msg-2"]

            # Hostile text is shown as text, and nothing ran.
            await _set(page, "search", "onerror")
            assert await page.wait_for(f"{COUNT}.startsWith('1 of')")
            await page.js("document.querySelector('#list li').click()")
            shown = await page.wait_for(
                "document.querySelector('#detail .conversation')?.innerText"
            )
            assert HOSTILE in shown
            assert (
                await page.js("document.querySelectorAll('#detail img, #detail script').length")
                == 0
            )
            assert await page.js("window.pwned === undefined")

            # Domain and tool-count filters.
            await _set(page, "search", "")
            await _set(page, "filter-domain", "travel")
            assert await page.wait_for(f"{COUNT}.startsWith('8 of')")
            _only_itself(page, url)

    asyncio.run(scenario())


def test_ten_thousand_trajectories_load_and_page(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    one = next(iter(read_trajectories(run))).model_dump(mode="json")
    records = ({**one, "id": f"traj-{i:05d}"} for i in range(10_000))
    page_path = tmp_path / "big.html"
    page_path.write_text(build_viewer(records, title="10k"), encoding="utf-8")
    url = page_path.as_uri()

    async def scenario() -> None:
        async with browser() as page:
            await page.open(url)
            await page.wait_for("document.body.dataset.ready")
            assert await page.js(COUNT) == "10000 of 10000 items, page 1 of 200"
            assert await page.js("document.querySelectorAll('#list li').length") == 50
            await page.js("document.getElementById('next').click()")
            assert await page.js("document.querySelector('#list li .item-id').textContent") == (
                "traj-00050"
            )
            await _set(page, "search", "traj-09999")
            assert await page.wait_for(f"{COUNT} === '1 of 10000 items'")
            loaded = await page.js("performance.getEntriesByType('navigation')[0].loadEventEnd")
            assert loaded < 30_000, f"{loaded} ms to load"
            _only_itself(page, url)

    asyncio.run(scenario())


def test_the_report_in_chromium(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    summary = load_summary(run)
    dataset = dataset_stats(read_trajectories(run), count_tokens=False)
    report = tmp_path / "report.html"
    report.write_text(
        html_report(dataset, summary.stats, examples=summary.examples), encoding="utf-8"
    )
    url = report.as_uri()

    async def scenario() -> None:
        async with browser(height=1600) as page:
            await page.open(url)
            rows = await page.js(
                "[...document.querySelectorAll('table.funnel tr')].slice(1)"
                ".map(tr => [...tr.children].map(td => td.textContent))"
            )
            assert rows == [
                ["writer", "22", "20", "2", "too_short 2"],
                ["rule_validator", "20", "19", "1", "ungrounded_argument 1"],
            ]
            examples = await page.js(
                "[...document.querySelectorAll('details.rule')].map(d => d.innerText)"
            )
            assert "only 5 characters" in examples[0]
            assert "K-999" in examples[1]
            ticks = await page.js(
                '[...document.querySelectorAll(\'svg[aria-label="tool calls per trajectory"]'
                " text.tick')].map(t => t.textContent)"
            )
            assert ticks == ["1", "2", "3", "4"]
            await _shot(page, "report", tmp_path)
            _only_itself(page, url)

    asyncio.run(scenario())
