"""The checks of every video through the real system (Prefect, process workers, the tiny Wan
pipeline and the Runway emulator): scores stored on the item, and each group action. The tiny
Wan pipeline makes noise, which fails the first-frame check; the emulator's video zooms into the
photo, which passes."""

from __future__ import annotations

import pytest
from sqlmodel import select

from reelroute.models.core.enums import InferenceProvider, ItemStatus, QualityAction
from reelroute.models.core.tables import Group, VideoItem
from reelroute.models.core.tasks import TaskSpec
from reelroute.models.intake.batches import add_batch
from reelroute.models.intake.photos import store_photo
from reelroute.models.items.groups import create_group
from reelroute.models.items.review import ab_pairs, accept_item, redos_of
from reelroute.models.store.files import Storage
from tests.e2e.test_system import posts_for, wait_for
from tests.models.helpers import textured_image_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
HELD_OR_DONE = {ItemStatus.review, ItemStatus.completed, ItemStatus.failed}


def add(system, name: str, provider: str, action: QualityAction | None = None):
    with system.session() as session:
        group = create_group(session, name=name)
        session.get(Group, group.id).quality_action = action
        session.commit()
    return add_to(system, group.id, name, provider)


def add_to(system, group_id, name: str, provider: str):
    with system.session() as session:
        group = session.get(Group, group_id)
        photo = store_photo(
            session,
            storage=Storage(system.settings.store.storage_url),
            group_id=group.id,
            data=textured_image_bytes(),
            filename="p.png",
            settings=system.settings,
        )
        (item,) = add_batch(
            session,
            group_id=group.id,
            settings=system.settings,
            tasks=[TaskSpec(photo_id=photo.id, prompt=name, inference_provider=provider)],
        )
        session.commit()
    return item


def settled(system, item_id):
    return wait_for(system, item_id, lambda i: i.status in HELD_OR_DONE, 240, "held or done")


def test_every_video_is_checked_and_its_scores_kept(system):
    item = settled(system, add(system, "checked turbo", "runway_gen4_turbo").id)
    assert item.status is ItemStatus.completed
    quality = item.quality
    assert quality["passed"] is True, quality
    assert quality["action"] == "accept" and quality["seconds"] > 0
    assert set(quality["scores"]) == {
        "decodes", "length", "fps", "resolution", "blank", "frozen", "flicker", "first_frame",
    }  # fmt: skip
    assert quality["scores"]["first_frame"] > 0.5


def test_a_noisy_wan_video_is_held_when_the_group_reviews(system):
    held = settled(system, add(system, "reviewed wan", "wan_local", QualityAction.review).id)
    assert held.status is ItemStatus.review, held.error
    assert held.quality["failed"].keys() >= {"first_frame"}
    assert held.review_reason.startswith("checks failed (") and held.output_path
    with system.session() as session:
        done = accept_item(session, item_id=held.id)
        session.commit()
    assert done.status is ItemStatus.completed


def test_a_noisy_wan_video_is_made_again_on_runway_when_the_group_escalates(system):
    item = add(system, "escalated wan", "wan_local", QualityAction.escalate)
    done = wait_for(
        system,
        item.id,
        lambda i: (
            i.status in HELD_OR_DONE and i.inference_provider is not InferenceProvider.wan_local
        ),
        300,
        "made again on Runway",
    )
    assert done.status is ItemStatus.completed, (done.status, done.review_reason, done.error)
    assert done.redo_count == 1 and done.quality["passed"] is True
    assert done.inference_provider is InferenceProvider.runway_gen4_turbo  # the cheapest
    assert "made again on" in (done.route_reason or "")
    with system.session() as session:
        [redo] = redos_of(session, item.id)
    assert (redo.provider, redo.by_check, redo.redo_provider) == (
        "wan_local",
        True,
        "runway_gen4_turbo",
    )
    assert "first_frame" in redo.reason
    assert len(posts_for(system, "escalated wan")) == 1  # paid once
    assert done.gpu_seconds is not None and done.gpu_seconds > 0  # the Wan attempt's GPU time


def test_an_ab_sample_is_made_by_wan_and_waits_for_a_blind_pick(system):
    """A Gen-4 Turbo item of a group that escalates failed checks and samples every item: Wan
    makes the sample's second video (noise: its checks fail), which is neither held nor made
    again; both videos then wait as a pair."""
    with system.session() as session:
        group = create_group(
            session, name="sampled", quality_action=QualityAction.escalate, shadow_rate=1.0
        )
        session.commit()
    item = add_to(system, group.id, "sampled turbo", "runway_gen4_turbo")
    done = settled(system, item.id)
    assert done.status is ItemStatus.completed
    with system.session() as session:
        (sample,) = session.exec(select(VideoItem).where(VideoItem.shadow_of == item.id)).all()
    sample = settled(system, sample.id)
    assert sample.status is ItemStatus.completed and sample.redo_count == 0
    assert sample.inference_provider is InferenceProvider.wan_local
    assert sample.quality["passed"] is False and sample.quality["action"] == "accept"
    with system.session() as session:
        (pair,) = ab_pairs(session)
        assert (pair.item.id, pair.shadow.id) == (item.id, sample.id)
        assert pair.id not in (item.id, sample.id)
    assert len(posts_for(system, "sampled turbo")) == 1  # Runway made the item's video only
