"""The Queue page's logic: badges, thumbnails, filters, paging, links, cancel and retry."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider, ItemStatus
from reelroute.models.core.errors import InvalidInput
from reelroute.models.items.dispatch import mark_dispatched
from reelroute.ui.views import queue as view
from tests.models.helpers import add_items
from tests.ui.helpers import populate, status_of


def badges(html: str) -> list[str]:
    return re.findall(r'<span class="rr-badge rr-(?:wan|gen4|veo)"[^>]*>([^<]+)</span>', html)


def statuses(html: str) -> list[str]:
    return re.findall(
        r'<span class="rr-badge rr-(?:pending|processing|completed|failed|cancelled)">'
        r"([^<]+)</span>",
        html,
    )


def test_the_seeds_columns_with_badges_thumbnails_and_workers(engine, settings):
    populated = populate(engine, settings)
    page = view.render_page(engine, settings, view.Filters())
    # Newest first: the pending Veo item, then the processing Wan item, …
    assert badges(page.html) == ["Veo 3.1", "WAN", "Gen-4", "Veo 3.1", "Gen-4", "WAN"]
    assert statuses(page.html) == [
        "pending",
        "processing",
        "failed",
        "completed",
        "completed",
        "completed",
    ]
    for header in (
        "ID",
        "Photo",
        "Prompt",
        "Inference method",
        "Status",
        "Worker",
        "Attempts",
        "Progress",
        "Age",
        "Prefect",
    ):
        assert f"<th>{header}</th>" in page.html
    assert page.html.count('<img src="data:image/jpeg;base64,') == 6
    assert "wan-worker-1" in page.html and "40%" in page.html
    assert "content moderation" in page.html
    pending = populated.by_state["pending"][0]
    assert page.choices[0] == (f"{str(pending)[:8]} · Veo 3.1 · pending", str(pending))
    assert page.next_cursor is None and page.shown == 6


def test_filters_by_provider_status_and_group(engine, settings):
    first = populate(engine, settings, name="first")
    populate(engine, settings, name="second")
    gen4 = view.render_page(engine, settings, view.Filters.parse("runway_gen4_turbo", "all", ""))
    assert set(badges(gen4.html)) == {"Gen-4"} and gen4.shown == 4
    done = view.Filters.parse("all", "completed", str(first.group_id))
    page = view.render_page(engine, settings, done)
    assert statuses(page.html) == ["completed"] * 3
    assert {uuid.UUID(value) for _, value in page.choices} == set(first.by_state["completed"])
    processing = view.render_page(engine, settings, view.Filters.parse(None, "processing", None))
    assert statuses(processing.html) == ["processing", "processing"]
    with pytest.raises(InvalidInput, match="filters:"):
        view.Filters.parse("runway_gen5", "all", None)
    empty = view.render_page(engine, settings, view.Filters.parse("all", "cancelled", None))
    assert "No items match these filters." in empty.html and empty.choices == []


def test_pages_follow_the_cursor_to_the_oldest_item(engine, settings):
    with Session(engine) as session:
        created = [str(item.id) for item in add_items(session, settings, 5)]
    first = view.render_page(engine, settings, view.Filters(), limit=2)
    second = view.render_page(engine, settings, view.Filters(), cursor=first.next_cursor, limit=2)
    third = view.render_page(engine, settings, view.Filters(), cursor=second.next_cursor, limit=2)
    seen = [value for page in (first, second, third) for _, value in page.choices]
    assert seen == created[::-1]
    assert third.next_cursor is None


def test_prompts_and_errors_are_escaped(engine, settings):
    with Session(engine) as session:
        add_items(session, settings, 1)
        item = add_items(session, settings, 1)[0]
        item.prompt = '<script>alert("x")</script> & more'
        session.add(item)
        session.commit()
    page = view.render_page(engine, settings, view.Filters())
    assert "<script>" not in page.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page.html


def test_each_item_links_to_its_prefect_flow_run(engine, settings):
    with Session(engine) as session:
        [item] = add_items(session, settings, 1)
        session.expire_on_commit = False
        run = uuid.uuid4()
        assert mark_dispatched(
            session,
            item_id=item.id,
            retry_count=0,
            flow_run_id=run,
            provider=item.inference_provider,
        )
        session.commit()
    page = view.render_page(
        engine, settings, view.Filters(), prefect_ui_url="http://127.0.0.1:4200/"
    )
    assert f'href="http://127.0.0.1:4200/runs/flow-run/{run}"' in page.html
    assert view.render_page(engine, settings, view.Filters()).html.count("flow run</a>") == 0


def test_cancel_and_retry_selected_items_each_on_its_own(engine, settings):
    populated = populate(engine, settings)
    pending = populated.by_state["pending"][0]
    completed = populated.by_state["completed"][0]
    failed = populated.by_state["failed"][0]
    message = view.act_on(engine, settings, "cancel", [str(pending), str(completed)])
    assert f"`{str(pending)[:8]}`: cancelled" in message
    assert f"`{str(completed)[:8]}`: not cancelled" in message
    assert (status_of(engine, pending), status_of(engine, completed)) == ("cancelled", "completed")
    message = view.act_on(engine, settings, "retry", [str(failed), str(pending), "nonsense"])
    assert f"`{str(failed)[:8]}`: pending" in message and "`nonsense`: not retried" in message
    assert (status_of(engine, failed), status_of(engine, pending)) == ("pending", "pending")
    assert view.act_on(engine, settings, "retry", []) == "Select items first."
    with pytest.raises(InvalidInput):
        view.act_on(engine, settings, "delete", [str(failed)])
    assert ItemStatus.cancelled.value in view.status_filter_choices()[-1]
    assert view.provider_filter_choices()[1] == ("WAN", InferenceProvider.wan_local.value)
