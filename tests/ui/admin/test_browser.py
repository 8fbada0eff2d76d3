"""The admin pages in a real browser (Debian's chromium driven by Playwright) against the real
web app on loopback and PostgreSQL: log in, upload photos, choose "Runway Veo 3.1", add tasks,
and see them in the queue, the statistics and the videos.

Screenshots of each page go to $REELROUTE_SCREENSHOTS when set (`make screenshots` writes
docs/screenshots/), else to the test's temporary folder.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import Session, col, select

from reelroute.models.core.enums import DeliveryStatus, InferenceProvider, ItemStatus, RoutedBy
from reelroute.models.core.tables import VideoItem, utcnow
from reelroute.models.items.lifecycle import cancel_item
from tests.models.helpers import image_bytes
from tests.ui.admin.conftest import WAIT_MS, Web, log_in, pick, screenshot
from tests.ui.helpers import populate, status_of

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("db_url", ["postgresql"], indirect=True),
]


def items(engine: sa.Engine) -> list[VideoItem]:
    with Session(engine) as session:
        return list(session.exec(select(VideoItem).order_by(col(VideoItem.created_at))).all())


def test_login_refuses_a_wrong_token(web, page):
    log_in(page, web.url, password="not-the-token")
    page.get_by_text("Incorrect Credentials").wait_for(timeout=WAIT_MS)
    assert page.get_by_text("reelroute admin").count() == 0


def test_admin_adds_veo_tasks_and_follows_them(web, page, shots, tmp_path):
    from playwright.sync_api import expect

    log_in(page, web.url)
    expect(page.get_by_text("reelroute admin")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#sandbox-banner")).to_contain_text("SANDBOX MODE")

    # New tasks: an urgent group (the rules would pick Gen-4), two photos, Veo chosen.
    page.get_by_label("New group name").fill("Seaside villas")
    pick(page, "Priority", "urgent")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_text("Group Seaside villas created.")).to_be_visible(timeout=WAIT_MS)
    files = []
    for n, color in enumerate([(220, 120, 60), (60, 140, 220)]):
        path = tmp_path / f"villa-{n}.png"
        path.write_bytes(image_bytes(160, 96, color=color))
        files.append(str(path))
    page.locator('input[type="file"]').set_input_files(files)
    add = page.get_by_role("button", name="Add video generation tasks (2)")
    expect(add).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Prompt", exact=True).fill("waves roll onto the beach at sunset")
    pick(page, "Inference method", "Runway Veo 3.1 (best quality)")
    expect(page.get_by_text("$4.80 (480 credits)")).to_be_visible(timeout=WAIT_MS)
    screenshot(page, shots / "admin-new-tasks.png")
    add.click()
    expect(page.get_by_text("2 task(s) added.")).to_be_visible(timeout=WAIT_MS)
    screenshot(page, shots / "admin-new-tasks-added.png")

    # The database holds exactly the provider chosen in the page (the seed's checklist).
    created = items(web.engine)
    assert [i.inference_provider for i in created] == [InferenceProvider.runway_veo3_1] * 2
    assert [i.routed_by for i in created] == [RoutedBy.explicit] * 2
    assert {i.status for i in created} == {ItemStatus.pending}

    # Queue: their badges; then items of every provider and state arrive and the page
    # refreshes by itself.
    page.get_by_role("tab", name="Queue").click()
    table = page.locator(".rr-table")
    expect(table.locator(".rr-veo")).to_have_count(2, timeout=WAIT_MS)
    expect(table.locator(".rr-pending")).to_have_count(2)
    populate(web.engine, web.settings)
    expect(table.locator("tbody tr")).to_have_count(8, timeout=WAIT_MS)
    for css, count in {"rr-wan": 2, "rr-gen4": 2, "rr-veo": 4, "rr-completed": 3}.items():
        expect(table.locator(f".{css}")).to_have_count(count)
    expect(table.locator("img")).to_have_count(8)
    screenshot(page, shots / "admin-queue.png")

    # Cancel one of the Veo items from the page.
    first = str(created[0].id)
    page.locator("label").filter(has_text=f"{first[:8]} · Veo 3.1 · pending").click()
    page.get_by_role("button", name="Cancel selected").click()
    expect(page.get_by_text(f"{first[:8]}: cancelled")).to_be_visible(timeout=WAIT_MS)
    assert status_of(web.engine, created[0].id) == "cancelled"
    expect(table.locator(".rr-cancelled")).to_have_count(1, timeout=WAIT_MS)

    # Filter: only Veo items.
    pick(page, "Inference method", "Veo 3.1")
    expect(table.locator("tbody tr")).to_have_count(4, timeout=WAIT_MS)
    expect(table.locator(".rr-wan")).to_have_count(0)

    # Statistics: the counts per provider.
    page.get_by_role("tab", name="Statistics").click()
    expect(page.get_by_text("8 items")).to_be_visible(timeout=WAIT_MS)
    # (the first such row: the acceptance table below names Veo 3.1 too)
    veo = page.get_by_role("row").filter(has_text="Runway Veo 3.1 (best quality)").first
    # Total 4, pending 2, processing 0, in review 0, completed 1.
    expect(veo).to_contain_text(re.compile(r"Runway Veo 3\.1 \(best quality\)\s*4\s*2\s*0\s*0\s*1"))
    expect(page.locator(".vega-embed")).to_have_count(3, timeout=WAIT_MS)
    kept = page.locator("#statistics-acceptance").get_by_role("row")
    veo_kept = kept.filter(has_text="Runway Veo 3.1 (best quality)").first
    expect(veo_kept).to_contain_text(re.compile(r"all\s*all\s*1 of 1\s*100%"), timeout=WAIT_MS)
    screenshot(page, shots / "admin-statistics.png")

    # Videos: the three finished videos, playable.
    page.get_by_role("tab", name="Videos").click()
    page.get_by_role("button", name="Refresh").click()
    gallery = page.locator("#videos-gallery")
    expect(gallery.locator("video")).to_have_count(3, timeout=WAIT_MS)
    gallery.locator("video").first.click()
    player = page.locator("#video-player video")
    expect(player).to_have_attribute("src", re.compile(r"\.mp4"), timeout=WAIT_MS)
    screenshot(page, shots / "admin-videos.png")


def test_a_budget_set_in_the_admin_refuses_a_named_provider_and_routes_around(
    web, page, shots, tmp_path
):
    from playwright.sync_api import expect

    log_in(page, web.url)
    expect(page.get_by_text("reelroute admin")).to_be_visible(timeout=WAIT_MS)

    # Budgets: no more Gen-4 Turbo today.
    page.get_by_role("tab", name="Budgets").click()
    pick(page, "Provider", "Runway Gen-4 Turbo (fast)")
    page.get_by_label("Cap ($)").fill("0")
    page.get_by_role("button", name="Set cap").click()
    expect(page.get_by_text("Cap set: $0.00 per day for runway_gen4_turbo.")).to_be_visible(
        timeout=WAIT_MS
    )
    budgets = page.get_by_role("row").filter(has_text="Runway Gen-4 Turbo (fast)")
    expect(budgets).to_contain_text("$0.00", timeout=WAIT_MS)
    screenshot(page, shots / "admin-budgets.png")

    # New tasks in an urgent group: naming Gen-4 Turbo is refused, saying what is left.
    page.get_by_role("tab", name="New tasks").click()
    page.get_by_label("New group name").fill("Flash sale")
    pick(page, "Priority", "urgent")
    page.get_by_role("button", name="Create group").click()
    expect(page.get_by_text("Group Flash sale created.")).to_be_visible(timeout=WAIT_MS)
    photo = tmp_path / "sale.png"
    photo.write_bytes(image_bytes(160, 96))
    page.locator('input[type="file"][accept^="image/*"]').set_input_files([str(photo)])
    add = page.get_by_role("button", name="Add video generation tasks (1)")
    expect(add).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Prompt", exact=True).fill("confetti falls")
    pick(page, "Inference method", "Runway Gen-4 Turbo (fast)")
    add.click()
    expect(
        page.get_by_text("the budget runway_gen4_turbo per day ($0.00) has $0.00 left")
    ).to_be_visible(timeout=WAIT_MS)
    assert items(web.engine) == []

    # Automatic: the urgent video goes to the next model that is on time, Gen-4.5.
    pick(page, "Inference method", "Automatic (routing rules)")
    add.click()
    expect(page.get_by_text("1 task(s) added.")).to_be_visible(timeout=WAIT_MS)
    [item] = items(web.engine)
    assert item.inference_provider is InferenceProvider.runway_gen4_5
    assert "Gen-4 skipped: at a cap" in (item.route_reason or "")


def test_the_dead_letters_are_listed_and_resent(web, page, shots):
    from playwright.sync_api import expect

    from reelroute.models.outbox import endpoints
    from reelroute.models.outbox import webhooks as hooks
    from reelroute.models.outbox.tables import WebhookDelivery

    settings = web.settings.replaced(
        webhook_signing_key=SecretStr("k" * 40), webhook_allow_networks="127.0.0.0/8"
    )
    url = "http://127.0.0.1:9/hooks"
    with Session(web.engine) as session:
        endpoints.register(session, settings, url=url)
        session.commit()
    populate(web.engine, web.settings)  # items with their events (to no endpoint yet)
    with Session(web.engine) as session:
        assert hooks.fan_out(session) > 0
        session.execute(sa.text("UPDATE video_items SET webhook_endpoint_id = "
                                "(SELECT id FROM webhook_endpoints)"))  # fmt: skip
        item = session.exec(select(VideoItem).where(VideoItem.status == "pending")).first()
        assert item is not None
        cancel_item(session, item_id=item.id)  # an event for the endpoint
        session.commit()
    with Session(web.engine) as session:
        assert hooks.fan_out(session) == 1
        [delivery] = session.exec(select(WebhookDelivery)).all()
        assert delivery.id is not None
        state = hooks.attempt_failed(
            session,
            delivery.id,
            error="answered 503, an error",
            status=503,
            now=utcnow(),
            retry_hours=0,
        )
        assert state is DeliveryStatus.dead
        session.commit()
        dead_id = delivery.id

    log_in(page, web.url)
    page.get_by_role("tab", name="Webhooks").click()
    expect(page.locator("#webhook-summary")).to_contain_text("1 dead", timeout=WAIT_MS)
    expect(page.get_by_test_id("cell-0-5")).to_contain_text("answered 503", timeout=WAIT_MS)
    screenshot(page, shots / "admin-webhooks.png")
    page.locator("#dead label").filter(has_text=f"#{dead_id} item.cancelled").click()
    page.get_by_role("button", name="Resend selected").click()
    expect(page.get_by_text(f"#{dead_id}: sent again")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#webhook-summary")).to_contain_text("0 dead", timeout=WAIT_MS)
    with Session(web.engine) as session:
        again = session.get(WebhookDelivery, dead_id)
        assert again is not None and (again.status, again.attempts) == ("pending", 0)


def test_the_providers_page_shows_an_open_breaker_and_why(web, page, shots):
    from playwright.sync_api import expect

    from reelroute.models.health.leadership import Leadership
    from tests.ui.test_providers import open_turbo

    open_turbo(web.engine, web.settings)
    leader = Leadership(web.settings.store.database_url, "dispatcher", holder="dispatch-a:4242")
    assert leader.check()
    log_in(page, web.url)
    page.get_by_role("tab", name="Providers").click()
    loops = page.locator("#loops-table")
    expect(loops.locator('tr[data-loop="dispatcher"] [data-state="led"]')).to_have_text(
        "dispatch-a:4242", timeout=WAIT_MS
    )
    expect(loops.locator('tr[data-loop="webhooks"]')).to_contain_text("nobody leads")
    turbo = page.locator('tr[data-name="model:runway_gen4_turbo"]')
    expect(turbo.locator('[data-state="open"]')).to_have_text("unavailable", timeout=WAIT_MS)
    expect(turbo).to_contain_text("HTTP_429: the daily limit")
    expect(turbo).to_contain_text("provider_exhausted 1")
    veo = page.locator('tr[data-name="model:runway_veo3.1"]')
    expect(veo.locator('[data-state="closed"]')).to_have_text("available")
    screenshot(page, shots / "admin-providers.png")
    leader.stop()


def held_for_review(web: Web) -> VideoItem:
    """A Gen-4 Turbo item whose video (an emulator-like zoom into a textured photo, but flat:
    its checks really fail) is held for review, as a flow run would hold it."""
    import numpy as np

    from reelroute.models.core.enums import Pool
    from reelroute.models.core.tasks import TaskSpec
    from reelroute.models.intake.batches import add_batch
    from reelroute.models.intake.photos import store_photo
    from reelroute.models.items.groups import create_group
    from reelroute.models.items.videos import complete_with_video
    from reelroute.models.store.files import Storage
    from reelroute.providers.quality import Expected, check_video
    from reelroute.providers.video import encode_mp4
    from tests.models.helpers import claim_next_item, textured_image_bytes

    storage = Storage(web.settings.store.storage_url)
    photo_bytes = textured_image_bytes(3, 192, 128)
    frames = [np.full((128, 192, 3), 40, np.uint8)] * 17  # dark and still: not the photo
    video = encode_mp4(iter(frames), fps=16, width=192, height=128)
    verdict = check_video(video, photo_bytes, Expected(17, None, 16.0, 192, 128, 1.5))
    with Session(web.engine, expire_on_commit=False) as session:
        group = create_group(session, name="reviewed")
        photo = store_photo(
            session, storage=storage, group_id=group.id, data=photo_bytes, filename="p.png",
            settings=web.settings,
        )  # fmt: skip
        (item,) = add_batch(
            session,
            group_id=group.id,
            settings=web.settings,
            tasks=[
                TaskSpec(
                    photo_id=photo.id,
                    prompt="the lighthouse beam sweeps over the waves",
                    inference_provider="runway_gen4_turbo",
                )
            ],
        )
        session.commit()
        claim = claim_next_item(session, web.settings, Pool.cloud)
        complete_with_video(
            session, storage, item_id=item.id, group_id=group.id, attempt=claim.attempt,
            worker_id=claim.worker_id, video=video, cost_credits=25,
            quality={**verdict.to_json(), "action": "review"},
            review_reason="checks failed (" + ", ".join(c.name for c in verdict.failed) + ")",
        )  # fmt: skip
        session.commit()
    return item


def test_the_review_page_shows_a_held_video_and_rejects_it(web, page, shots):
    from playwright.sync_api import expect

    item = held_for_review(web)
    log_in(page, web.url)
    page.get_by_role("tab", name="Review").click()
    scores = page.locator("#review-scores")
    expect(scores.locator('[data-check="first_frame"]')).to_have_text("failed", timeout=WAIT_MS)
    expect(scores.locator('[data-check="decodes"]')).to_have_text("passed")
    expect(page.locator("#review-about")).to_contain_text("the lighthouse beam sweeps")
    expect(page.locator("#review-video video")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#review-photo img")).to_have_count(1, timeout=WAIT_MS)
    screenshot(page, shots / "admin-review.png")
    page.locator("#review-reason textarea").fill("the sea is a flat grey, not the photo")
    pick(page, "Make it again with", "Runway Veo 3.1 (best quality)")
    page.locator("#review-reject").click()
    expect(page.locator("#review-outcome")).to_contain_text(
        "rejected: made again on Runway Veo 3.1 (best quality)", timeout=WAIT_MS
    )
    expect(page.locator("#review-about")).to_contain_text("Nothing is held.", timeout=WAIT_MS)
    with Session(web.engine) as session:
        again = session.get(VideoItem, item.id)
        assert again is not None
        assert (again.status, again.inference_provider, again.redo_count) == (
            ItemStatus.pending,
            InferenceProvider.runway_veo3_1,
            1,
        )


def ab_pair(web: Web) -> VideoItem:
    """A Gen-4 Turbo item of a group that samples every item, and its Wan sample, both made
    (two different clips of one photo)."""
    import numpy as np

    from reelroute.models.core.enums import Pool
    from reelroute.models.core.tasks import TaskSpec
    from reelroute.models.intake.batches import add_batch
    from reelroute.models.intake.photos import store_photo
    from reelroute.models.items.groups import create_group
    from reelroute.models.items.videos import complete_with_video
    from reelroute.models.store.files import Storage
    from reelroute.providers.video import encode_mp4
    from tests.models.helpers import claim_next_item, textured_image_bytes, textured_picture

    storage = Storage(web.settings.store.storage_url)
    picture = textured_picture(5, 192, 128)
    clips = {
        Pool.cloud: [np.roll(picture, shift, axis=1) for shift in range(17)],  # a slow pan
        Pool.gpu: [np.full((128, 192, 3), 60 + 4 * n, np.uint8) for n in range(17)],  # a fade
    }
    with Session(web.engine, expire_on_commit=False) as session:
        group = create_group(session, name="sampled", shadow_rate=1.0)
        photo = store_photo(
            session, storage=storage, group_id=group.id, data=textured_image_bytes(5, 192, 128),
            filename="p.png", settings=web.settings,
        )  # fmt: skip
        (item,) = add_batch(
            session,
            group_id=group.id,
            settings=web.settings,
            tasks=[
                TaskSpec(
                    photo_id=photo.id,
                    prompt="a paper boat drifts down the gutter",
                    inference_provider="runway_gen4_turbo",
                )
            ],
        )
        session.commit()
        for pool, frames in clips.items():
            claim = claim_next_item(session, web.settings, pool)
            assert claim is not None
            complete_with_video(
                session, storage, item_id=claim.item_id, group_id=group.id,
                attempt=claim.attempt, worker_id=claim.worker_id,
                video=encode_mp4(iter(frames), fps=16, width=192, height=128),
            )  # fmt: skip
            session.commit()
    return item


def test_the_review_page_compares_an_ab_pair_blind(web, page, shots):
    from playwright.sync_api import expect

    ab_pair(web)
    log_in(page, web.url)
    page.get_by_role("tab", name="Review").click()
    expect(page.locator("#ab-about")).to_contain_text("a paper boat drifts", timeout=WAIT_MS)
    expect(page.locator("#ab-a video")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#ab-b video")).to_have_count(1, timeout=WAIT_MS)
    # nothing on the pair names who made which
    pair_text = page.locator("#ab-pick").inner_text() + page.locator("#ab-about").inner_text()
    assert "Gen-4" not in pair_text and "Wan" not in pair_text
    page.locator("#ab-a").scroll_into_view_if_needed()
    screenshot(page, shots / "admin-ab.png")
    page.locator("#ab-both").click()
    expect(page.locator("#ab-outcome")).to_contain_text(
        "Recorded: both fine (Runway Gen-4 Turbo (fast) made the item's video", timeout=WAIT_MS
    )
    expect(page.locator("#ab-about")).to_contain_text("No pair waits.", timeout=WAIT_MS)
