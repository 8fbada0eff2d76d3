"""The New tasks page's logic: options, estimates, routing preview, adding a batch."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from reelroute.models.core.enums import AUTO, GroupPriority, InferenceProvider, RoutedBy
from reelroute.models.core.errors import Conflict, InvalidInput
from reelroute.models.core.tables import Photo, VideoItem
from reelroute.ui.views import new_tasks as view
from tests.models.helpers import add_items, image_bytes


def counts(engine: sa.Engine) -> tuple[int, int]:
    with Session(engine) as session:
        photos = session.exec(select(func.count()).select_from(Photo)).one()
        items = session.exec(select(func.count()).select_from(VideoItem)).one()
    return photos, items


def test_the_select_offers_the_seeds_three_methods_our_two_and_auto():
    assert view.provider_choices() == [
        ("WAN local (GPU server)", "wan_local"),
        ("Runway Gen-4 Turbo (fast)", "runway_gen4_turbo"),
        ("Runway Gen-4.5 (newest Runway model)", "runway_gen4.5"),
        ("Runway Veo 3.1 Fast", "runway_veo3.1_fast"),
        ("Runway Veo 3.1 (best quality)", "runway_veo3.1"),
        ("Automatic (routing rules)", "auto"),
    ]
    assert view.button_label(3) == "Add video generation tasks (3)"


def test_options_show_each_models_length_price_and_predicted_finish(engine, settings):
    settings = settings.replaced(cloud_slots=5, gpu_slots=2)
    group = view.add_group(engine, "Houses", "normal")
    wan, gen4, gen45, fast, veo = view.options(engine, settings, group, 12, 5)
    assert (wan.video_seconds, wan.cost) == (5, "free (our GPUs)")
    # 12 Wan videos on 2 GPUs, 30 min each (the catalogue's median until there is history).
    assert (
        wan.expected_time.startswith("all 12 done in 3.0 h") and "**late**" not in wan.expected_time
    )
    assert gen4.cost == "$3.00 (300 credits)"  # 5 credits/s x 5 s x 12
    assert gen4.expected_time.startswith("all 12 done in 11 min")  # 3 waves of 3.5 min
    assert gen45.cost == "$7.20 (720 credits)"
    # Veo makes 4, 6 or 8 s: 5 s rounds up to 6 s (the admin gets at least what was asked).
    assert (veo.video_seconds, veo.cost) == (6, "$28.80 (2,880 credits)")
    assert (fast.video_seconds, fast.cost) == (6, "$10.80 (1,080 credits)")
    late = view.options(engine, settings, group, 12, 5, deadline="1h")[0]
    assert "**late**" in late.expected_time  # 3 h of Wan is past a 1 h deadline
    table = view.options_markdown(engine, settings, group, 12, 5, "x", "runway_veo3.1")
    assert "**Runway Veo 3.1 (best quality)**" in table and "Predicted finish" in table
    assert "pick a group" in view.options(engine, settings, None, 12, 5)[0].expected_time


def test_auto_preview_says_what_the_policy_chooses_and_why(engine, settings):
    urgent = view.add_group(engine, "Launch", "urgent")
    assert view.auto_choice(engine, settings, urgent).startswith(
        "Runway Gen-4 Turbo (fast), because Gen-4 predicted"
    )
    normal = view.add_group(engine, "Archive", "normal")
    assert view.auto_choice(engine, settings, normal).startswith(
        "WAN local (GPU server), because WAN predicted"
    )
    assert view.auto_choice(engine, settings, normal, "10m").startswith(
        "Runway Gen-4 Turbo (fast)"  # 10 minutes: too soon for Wan
    )
    threshold = settings.replaced(
        routing_policy="threshold",
        default_provider=InferenceProvider.wan_local,
        wan_fallback_threshold=2,
    )
    with Session(engine) as session:
        add_items(session, threshold, 3, provider=InferenceProvider.wan_local)
    assert "more than the threshold of 2" in view.auto_choice(engine, threshold, normal)
    assert view.auto_choice(engine, settings, None) == (
        "pick a group to see what the routing policy chooses"
    )


def test_groups_are_created_and_listed_newest_first(engine):
    first = view.add_group(engine, "First", "normal")
    second = view.add_group(engine, "  Second  ", "high_quality")
    assert view.group_choices(engine)[:2] == [
        ("Second · high_quality", second),
        ("First · normal", first),
    ]
    with pytest.raises(InvalidInput, match="name: is empty"):
        view.add_group(engine, "  ", "normal")
    with pytest.raises(InvalidInput, match="'vip' is not one of normal, urgent, high_quality"):
        view.add_group(engine, "x", "vip")
    with pytest.raises(Conflict, match=f"'First' already exists \\(id {first}\\)"):
        view.add_group(engine, "FIRST", "urgent")


def test_a_batch_stores_photos_and_items_with_exactly_the_chosen_provider(engine, settings):
    group = view.add_group(engine, "Houses", GroupPriority.urgent.value)
    batch = view.Batch(
        group_id=group,
        photos=[
            ("a.png", image_bytes(color=(10, 20, 30))),
            ("b.png", image_bytes(color=(90, 20, 30))),
        ],
        prompt="waves roll in",
        per_photo_prompts="\nthe door opens slowly",
        duration_s=8,
        provider="runway_veo3.1",
    )
    created = view.submit_batch(engine, settings, batch)
    assert [c.photo for c in created] == ["a.png", "b.png"]
    assert {c.provider for c in created} == {"Runway Veo 3.1 (best quality)"}
    with Session(engine) as session:
        items = session.exec(select(VideoItem).order_by(col(VideoItem.created_at))).all()
    # The urgent group would route to Gen-4; the explicit choice wins and is stored exactly.
    assert [i.inference_provider for i in items] == [InferenceProvider.runway_veo3_1] * 2
    assert [i.routed_by for i in items] == [RoutedBy.explicit] * 2
    assert [i.prompt for i in items] == ["waves roll in", "the door opens slowly"]
    assert {i.duration_s for i in items} == {8}
    result = view.result_markdown(created)
    assert "**2 task(s) added.**" in result and "runway_veo3.1 was chosen" in result


def test_auto_batch_shows_why_each_item_went_where_it_did(engine, settings):
    group = view.add_group(engine, "Archive", "high_quality")
    [created] = view.submit_batch(
        engine,
        settings,
        view.Batch(
            group_id=group,
            photos=[("a.png", image_bytes(color=(1, 2, 3)))],
            prompt="p",
            provider=AUTO,
        ),
    )
    # High-quality groups allow the Veo family; Veo Fast is the cheaper one on time.
    assert created.provider == "Runway Veo 3.1 Fast"
    assert created.routed_by == "deadline" and created.reason.startswith("Veo Fast predicted")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"photos": [("a.png", b"not an image"), ("b.png", image_bytes(color=(1, 1, 1)))]},
            "photo 1 (a.png): is not a readable image",
        ),
        ({"frame_num": 100}, "photo 2 (b.png), frame_num: 100 is not a frame count"),
        (
            {"prompt": "", "per_photo_prompts": "only the first"},
            "photo 2 (b.png), prompt: is empty",
        ),
        ({"provider": "runway_gen5"}, "'runway_gen5' is not a provider"),
        ({"per_photo_prompts": "1\n2\n3"}, "3 lines for 2 photo(s)"),
        ({"group_id": None}, "group: none chosen"),
        ({"photos": []}, "photos: none uploaded"),
        ({"prompt": "x" * 1001}, "shorten it to at most 1000"),
    ],
)
def test_a_bad_batch_says_what_to_fix_and_writes_nothing(engine, settings, change, message):
    group = view.add_group(engine, "Houses", "normal")
    fields = {
        "group_id": group,
        "photos": [
            ("a.png", image_bytes(color=(10, 20, 30))),
            ("b.png", image_bytes(color=(90, 20, 30))),
        ],
        "prompt": "waves roll in",
        "provider": "runway_veo3.1",
    }
    batch = view.Batch(**{**fields, **change})
    with pytest.raises(InvalidInput) as raised:
        view.submit_batch(engine, settings, batch)
    assert any(message in problem for problem in raised.value.problems), raised.value.problems
    assert counts(engine) == (0, 0)
    assert view.problems_markdown(raised.value.problems).startswith("**Nothing was added.**")


def test_result_and_problems_cannot_inject_markup():
    text = view.problems_markdown(["<img src=x onerror=alert(1)> | cell"])
    assert "<img" not in text and "\\|" in text
