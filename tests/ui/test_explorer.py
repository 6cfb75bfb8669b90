"""The execution explorer in Chromium: sign-in, the retriever pipeline, a run from the generated
form followed live, the waterfall measured against the stage durations, the funnel, budget and
cache, score provenance, the filtered executions list, replay with its diff, and API errors.
What the page shows is checked against what the API answers for the same execution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import ServerHandle
from tests.ui.conftest import Tab, screenshot
from tests.ui.world import QUERY, STAGES, World, build_world, signed_in

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def world(server: ServerHandle) -> Iterator[World]:
    w = build_world(server)
    yield w
    w.http.close()


def test_sign_in_keeps_the_key_in_this_tab_only(
    tab: Tab, server: ServerHandle, world: World, browser: Browser
) -> None:
    page = tab.page
    page.goto(f"{server.base_url}/")
    assert page.url == f"{server.base_url}/ui/"  # GET / redirects to the explorer
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("navigation")).to_be_hidden()

    # A wrong key: the API's 401 is shown in its words.
    wrong = server.client("sk_not_a_key").get("/v1/namespaces").json()["error"]
    page.get_by_label("API key").fill("sk_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text(wrong["code"])
    expect(page.get_by_role("alert")).to_contain_text(wrong["message"])

    page.get_by_label("API key").fill(server.admin_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Choose a namespace")).to_be_visible()
    expect(page.get_by_role("button", name=f"Use {world.other_namespace}")).to_be_visible()
    page.get_by_role("button", name=f"Use {world.namespace}").click()
    expect(page.get_by_role("heading", name="Retrievers", exact=True)).to_be_visible()

    stored = page.evaluate(
        "() => ({session: {...sessionStorage}, local: localStorage.length,"
        " cookie: document.cookie})"
    )
    assert stored["session"]["stagewise.apiKey"] == server.admin_key
    assert stored["session"]["stagewise.namespace"] == world.namespace_id
    assert stored["local"] == 0 and stored["cookie"] == ""
    assert page.context.cookies() == []
    # Another tab of the same browser profile does not have it.
    other = page.context.new_page()
    other.goto(f"{server.base_url}/ui/")
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    other.close()

    # Each retriever with its stage pipeline, in order, with key parameters.
    card = page.locator(f"[data-retriever-id='{world.retriever_id}']")
    stages = card.locator("ol.pipeline > li")
    expect(stages).to_have_count(len(STAGES))
    for i, stage in enumerate(STAGES):
        expect(stages.nth(i)).to_contain_text(stage["stage_name"])
        expect(stages.nth(i)).to_contain_text(stage["config"]["stage_id"])
    expect(stages.nth(0)).to_contain_text("rrf")
    expect(stages.nth(1)).to_contain_text("{{INPUT.year}}")

    expect(page.get_by_role("navigation")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.length") == 0


def _check_waterfall(page: Page, stats: dict[str, Any], total_ms: float) -> None:
    """One bar per stage; each starts where the previous ended and its width is its duration
    over the axis, but for bars under the explicit minimum width, drawn at that minimum."""
    bars = page.locator(".waterfall .bar")
    expect(bars).to_have_count(len(stats))
    min_px = float(
        page.evaluate(
            "() => getComputedStyle(document.documentElement).getPropertyValue('--bar-min')"
        ).strip()[:-2]
    )
    track = page.locator(".waterfall .track").first.bounding_box()
    assert track is not None and track["width"] > 300
    durations = [float(s["duration_ms"]) for s in stats.values()]
    axis = max(sum(durations), total_ms)
    assert float(page.locator(".waterfall").get_attribute("data-axis-ms") or 0) == pytest.approx(
        axis
    )
    drawn = []
    offset = 0.0
    for i, (name, duration) in enumerate(zip(stats, durations, strict=True)):
        bar = bars.nth(i)
        assert bar.get_attribute("data-stage") == name
        assert float(bar.get_attribute("data-duration-ms") or -1) == pytest.approx(duration)
        assert name in (bar.get_attribute("aria-label") or "")
        box = bar.bounding_box()
        assert box is not None
        assert box["x"] == pytest.approx(track["x"] + track["width"] * offset / axis, abs=1.0)
        expected = track["width"] * duration / axis
        if expected > min_px:
            assert box["width"] == pytest.approx(expected, abs=1.0), name
        else:
            assert box["width"] == pytest.approx(min_px, abs=0.5), name
        drawn.append((box["width"], duration))
        offset += duration
    # Proportionality between the bars drawn above the minimum, against the widest.
    above = [(w, d) for w, d in drawn if w > 3 * min_px]
    assert len(above) >= 2, drawn  # the two sleepers at least
    widest, longest = max(above)
    for width, duration in above:
        assert width / widest == pytest.approx(duration / longest, abs=0.02)


def _number(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


def test_a_run_from_the_form_is_followed_live_and_drawn(
    tab: Tab, server: ServerHandle, world: World
) -> None:
    page = signed_in(tab.page, server, world, f"#/retrievers/{world.retriever_id}")
    expect(page.get_by_label("year", exact=True)).to_have_value("2000")  # the schema default
    page.get_by_label("query", exact=True).fill(QUERY)
    page.get_by_label("Skip the result cache").check()
    page.get_by_role("button", name="Run", exact=True).click()

    # While it runs: the status route's progress, polled, the slow stage named.
    live = page.locator("#run-live")
    expect(live).to_have_attribute("data-current-stage", "slow")
    expect(page.locator("#run-progress-text")).to_contain_text("running slow")
    expect(page.locator(".waterfall")).to_be_visible()
    expect(live).to_have_count(0)
    execution_id = page.url.rsplit("/", 1)[1]
    detail = world.detail(world.retriever_id, execution_id)
    assert detail["status"] == "completed"
    stats = detail["stage_statistics"]["stages"]
    assert list(stats) == [s["stage_name"] for s in STAGES]

    _check_waterfall(page, stats, detail["stage_statistics"]["total_time_ms"])
    for name, s in stats.items():
        row = page.locator(f".funnel tr[data-stage='{name}']")
        assert _number(row.locator("[data-field=input]").inner_text()) == s["input_count"]
        assert _number(row.locator("[data-field=output]").inner_text()) == s["output_count"]
    credits = page.locator("[data-budget=credits]")
    expect(credits).to_contain_text("of 50")
    assert _number(credits.inner_text()) == pytest.approx(detail["budget"]["credits_used"], 1e-3)
    expect(page.locator("[data-budget=time]")).to_contain_text("of 20.00 s")
    expect(page.locator("#cache-state")).to_have_attribute("data-cache-hit", "false")
    expect(page.get_by_text("No error.")).to_be_visible()
    screenshot(page, "execution-detail")

    # A hit opens to its provenance: each search's raw score and rank, the fused score, MMR.
    hit = detail["documents"][0]
    assert {k.split(":")[0] for k in hit["scores"]["sources"]} == {"dense", "bm25"}
    first = page.locator("ol.hits > li").first
    expect(first).to_have_attribute("data-document-id", hit["document_id"])
    first.locator("details.hit > summary").click()
    for key, source in hit["scores"]["sources"].items():
        row = first.locator(f"tr[data-source='{key}']")
        expect(row.locator("[data-field=rank]")).to_have_text(str(source["rank"]))
        raw = _number(row.locator("[data-field=raw]").inner_text())
        assert raw == pytest.approx(source["raw"], rel=1e-3)
    fused = first.locator("[data-score=fused]")
    expect(fused).to_contain_text("rrf")
    assert _number(fused.inner_text()) == pytest.approx(hit["scores"]["fused"], rel=1e-3)
    assert _number(first.locator("[data-score=mmr]").inner_text()) == pytest.approx(
        hit["scores"]["mmr"], rel=1e-3
    )
    first.scroll_into_view_if_needed()
    screenshot(page, "provenance")

    # The same inputs again, the cache allowed: a hit, said so.
    page.goto(f"{server.base_url}/ui/#/retrievers/{world.retriever_id}")
    page.get_by_label("query", exact=True).fill(QUERY)
    page.get_by_role("button", name="Run", exact=True).click()
    cache = page.locator("#cache-state")
    expect(cache).to_have_attribute("data-cache-hit", "true")
    cached_id = page.url.rsplit("/", 1)[1]
    assert cached_id != execution_id
    assert world.detail(world.retriever_id, cached_id)["cache_hit"] is True
    expect(page.locator(".waterfall").locator("..")).to_contain_text("original run's statistics")


def _utc_local(moment: datetime) -> str:
    # The browser runs in UTC (conftest), so its datetime-local value is UTC wall time.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _rows(page: Page) -> list[dict[str, str]]:
    return list(
        page.locator("table.executions tbody tr").evaluate_all(
            "rows => rows.map(r => ({id: r.dataset.executionId, status: r.dataset.status}))"
        )
    )


def test_the_executions_list_filters_by_retriever_status_and_time(
    tab: Tab, server: ServerHandle, world: World
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    failed = world.execute(world.tight_id, {"query": QUERY})
    assert failed["status"] == "failed", failed
    done = world.execute(world.retriever_id, {"query": "photosynthesis", "year": 2000})
    assert done["status"] == "completed"

    page = signed_in(tab.page, server, world, f"#/executions?retriever={world.tight_id}")
    expect(page.locator(f"tr[data-execution-id='{failed['execution_id']}']")).to_be_visible()
    assert {r["status"] for r in _rows(page)} == {"failed"}

    page.get_by_label("Retriever").select_option(world.retriever_id)
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(f"tr[data-execution-id='{done['execution_id']}']")).to_be_visible()
    listed = _rows(page)
    assert {r["status"] for r in listed} == {"completed"}
    api = world.http.post(
        f"/v1/retrievers/{world.retriever_id}/executions/list",
        params={"limit": 20},
        json={"status": "completed"},
    ).json()
    assert [r["id"] for r in listed] == [x["execution_id"] for x in api["results"]]

    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No execution matches.")).to_be_visible()

    # A time window: from before these runs to now lists the completed one; a window that
    # ends before it was created does not.
    page.get_by_label("Status").select_option("")
    page.get_by_label("Started from").fill(_utc_local(before))
    page.get_by_label("Started until").fill(_utc_local(datetime.now(UTC) + timedelta(minutes=1)))
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(f"tr[data-execution-id='{done['execution_id']}']")).to_be_visible()
    created = datetime.fromisoformat(done["created_at"].replace("Z", "+00:00"))
    api = world.http.post(
        f"/v1/retrievers/{world.retriever_id}/executions/list",
        params={"limit": 20},
        json={"start_time": before.replace(microsecond=0).isoformat()},
    ).json()
    assert [r["id"] for r in _rows(page)] == [x["execution_id"] for x in api["results"]]
    page.get_by_label("Started until").fill(_utc_local(created - timedelta(seconds=1)))
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(f"tr[data-execution-id='{done['execution_id']}']")).to_have_count(0)

    # The failed run's page shows its error as the API states it.
    page.goto(
        f"{server.base_url}/ui/#/retrievers/{world.tight_id}/executions/{failed['execution_id']}"
    )
    expect(page.locator("#execution-error")).to_contain_text(failed["error"])
    expect(page.locator("#execution-summary [data-status]")).to_have_attribute(
        "data-status", "failed"
    )


def test_replay_after_a_document_changed_shows_the_ranking_diff(
    tab: Tab, server: ServerHandle, world: World
) -> None:
    inputs = {"query": QUERY, "year": 2000}
    original = world.execute(world.retriever_id, inputs)["execution_id"]
    before = world.ranking(original)
    climber_text = "Filler document number 7 about gardening and soil"
    climber = world.document_id(climber_text)
    assert climber not in before[:3]
    resp = world.http.patch(
        f"/v1/collections/kbase/documents/{climber}",
        json={"text": "A cat by the window, asleep in the sun on the windowsill"},
    )
    assert resp.status_code == 200, resp.text

    page = signed_in(
        tab.page, server, world, f"#/retrievers/{world.retriever_id}/executions/{original}"
    )
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.locator(".diff-table")).to_be_visible(timeout=30_000)
    link = page.locator(".replayed-link")
    replayed = (link.get_attribute("href") or "").rsplit("/", 1)[1]
    after = world.ranking(replayed)
    assert climber in after[:3]

    rows = page.locator(".diff-table tbody tr").evaluate_all(
        """rows => rows.map(r => ({doc: r.dataset.documentId, change: r.dataset.change,
            was: r.cells[2].textContent, now: r.cells[3].textContent,
            delta: r.cells[4].textContent}))"""
    )
    # Every row's ranks are the two stored rankings' (depth 100 covers both).
    assert {r["doc"] for r in rows} == set(before) | set(after)
    for row in rows:
        was = str(before.index(row["doc"]) + 1) if row["doc"] in before else "—"
        now = str(after.index(row["doc"]) + 1) if row["doc"] in after else "—"
        assert (row["was"], row["now"]) == (was, now), row
    mine = next(r for r in rows if r["doc"] == climber)
    if climber in before:
        assert mine["change"] == "up"
        assert mine["delta"] == f"+{int(mine['was']) - int(mine['now'])}"
    else:
        assert mine["change"] == "new"
    # The summary counts the rows of each kind; something moved.
    for kind, change in (
        ("moved_up", "up"),
        ("moved_down", "down"),
        ("unchanged", "same"),
        ("new", "new"),
        ("gone", "gone"),
    ):
        item = page.locator(f".diff-summary [data-kind={kind}]")
        expect(item).to_be_visible()
        assert int(item.get_attribute("data-count") or -1) == sum(
            r["change"] == change for r in rows
        )
    assert any(r["change"] != "same" for r in rows)
    page.locator(".replay-result").evaluate("el => el.scrollIntoView({block: 'start'})")
    screenshot(page, "replay-diff")

    link.click()
    expect(page.locator("#execution-summary")).to_contain_text(original)  # "Replay of"
    expect(page.locator(".waterfall .bar")).to_have_count(len(STAGES))


def test_api_errors_are_shown_not_swallowed(tab: Tab, server: ServerHandle, world: World) -> None:
    missing = world.http.get("/v1/retrievers/ret_missing").json()["error"]
    page = signed_in(tab.page, server, world, "#/retrievers/ret_missing")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(f"404 {missing['code']}")
    expect(alert).to_contain_text(missing["message"])

    path = f"/v1/retrievers/{world.retriever_id}/executions/exec_missing"
    gone = world.http.get(path).json()["error"]
    page.goto(f"{server.base_url}/ui/#/retrievers/{world.retriever_id}/executions/exec_missing")
    expect(page.get_by_role("alert")).to_contain_text(gone["code"])
    page.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_role("alert")).to_have_count(0)
