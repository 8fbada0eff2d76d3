"""The Review page without Gradio: the held videos with their photo, video and scores; accept,
and reject with a reason and a redo provider (or the group's next option)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider, ItemStatus, Pool
from reelroute.models.items.videos import complete_with_video
from reelroute.models.store.files import Storage
from reelroute.ui.views import review as view
from tests.models.helpers import add_items, claim_next_item, reloaded

QUALITY = {
    "passed": False,
    "scores": {"decodes": 1.0, "blank": 3.5, "first_frame": 0.12},
    "failed": {"blank": "luma spans 3.5 of 255 <b>", "first_frame": "SSIM 0.12"},
    "seconds": 0.31,
    "action": "review",
}


def hold(engine, settings, provider=InferenceProvider.runway_gen4_turbo):
    with Session(engine, expire_on_commit=False) as session:
        (item,) = add_items(session, settings, 1, provider)
        claim = claim_next_item(session, settings, Pool.cloud)
        complete_with_video(
            session,
            Storage(settings.store.storage_url),
            item_id=item.id,
            group_id=item.group_id,
            attempt=claim.attempt,
            worker_id=claim.worker_id,
            video=b"held video bytes",
            cost_credits=25,
            quality=QUALITY,
            review_reason="checks failed (blank, first_frame)",
        )
        session.commit()
    return item


def test_the_page_lists_each_held_video_with_its_photo_and_scores(engine, settings, tmp_path):
    item = hold(engine, settings)
    [shown] = view.held(engine, settings, cache=tmp_path)
    assert shown.item_id == item.id and shown.prompt == "task 0"
    assert shown.reason == "checks failed (blank, first_frame)"
    assert shown.video is not None and Path(shown.video).read_bytes() == b"held video bytes"
    assert shown.photo is None  # the helper's photo rows have no file: nothing to show
    assert shown.scores.count('data-passed="false"') == 2
    assert 'data-check="decodes" data-passed="true"' in shown.scores
    assert "luma spans 3.5 of 255 &lt;b&gt;" in shown.scores  # escaped
    assert "Checked in 0.31 s" in shown.scores
    assert "No checks were made" in view.render_scores(None)


def test_accept_and_reject_say_what_happened(engine, settings):
    first, second = hold(engine, settings), hold(engine, settings)
    assert view.accept(engine, str(first.id)) == f"`{str(first.id)[:8]}` accepted: completed."
    assert reloaded(engine, first.id).status is ItemStatus.completed
    assert "not accepted" in view.accept(engine, str(first.id))
    assert "reason: is empty" in view.reject(engine, settings, str(second.id), " ", "")
    said = view.reject(engine, settings, str(second.id), "blurry", "runway_veo3.1")
    assert said == f"`{str(second.id)[:8]}` rejected: made again on Runway Veo 3.1 (best quality)."
    redone = reloaded(engine, second.id)
    assert redone.status is ItemStatus.pending and redone.redo_count == 1
    assert view.held(engine, settings) == []


def test_reject_without_a_provider_takes_the_groups_next_option(engine, settings):
    item = hold(engine, settings)
    said = view.reject(engine, settings, str(item.id), "the face is wrong", view.NEXT_OPTION)
    assert "rejected: made again on" in said
    redone = reloaded(engine, item.id)
    assert redone.inference_provider is not InferenceProvider.runway_gen4_turbo
    assert [value for _, value in view.redo_choices()][:2] == ["", "wan_local"]
