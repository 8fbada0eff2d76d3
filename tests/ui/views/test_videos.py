"""The Videos page's logic: finished videos by group, playable from a local file."""

from __future__ import annotations

from pathlib import Path

from reelroute.models.store.files import Storage
from reelroute.providers.video import probe_mp4
from reelroute.ui.views import videos as view
from tests.ui.helpers import populate


def test_finished_videos_of_a_group_newest_first(engine, settings, tmp_path):
    first = populate(engine, settings, name="first")
    second = populate(engine, settings, name="second")
    videos = view.finished(engine, settings, str(first.group_id), cache=tmp_path)
    assert [v.caption.split(" · ")[1] for v in videos] == ["Veo 3.1", "Gen-4", "WAN"]
    for video in videos:
        assert probe_mp4(Path(video.path).read_bytes()).frames == 9
    everything = view.finished(engine, settings, None, cache=tmp_path)
    assert len(everything) == 6
    ids = {v.caption.split(" · ")[0] for v in everything}
    assert {str(i)[:8] for i in second.by_state["completed"]} <= ids
    assert view.finished(engine, settings, "", limit=2, cache=tmp_path)[0] == everything[0]


def test_a_remote_store_is_copied_once_to_a_local_file(tmp_path):
    storage = Storage("memory://reelroute-test-videos")
    storage.write("videos/g/i.mp4", b"mp4 bytes")
    copy = view.local_copy(storage, "videos/g/i.mp4", tmp_path)
    assert Path(copy).read_bytes() == b"mp4 bytes"
    storage.write("videos/g/i.mp4", b"changed")
    assert view.local_copy(storage, "videos/g/i.mp4", tmp_path) == copy
    local = Storage(str(tmp_path / "store"))
    local.write("videos/a.mp4", b"x")
    assert view.local_copy(local, "videos/a.mp4", tmp_path) == str(tmp_path / "store/videos/a.mp4")


def test_a_copy_is_never_written_through_a_link(tmp_path):
    """A link planted where a page's copy goes (as another user of a shared /tmp could) is
    replaced, and the file it points to is left alone."""
    from reelroute.ui.views.videos import private_folder, write_new

    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    target = tmp_path / "a.mp4"
    target.symlink_to(victim)
    write_new(target, b"video")
    assert victim.read_bytes() == b"keep me"
    assert not target.is_symlink() and target.read_bytes() == b"video"
    folder = private_folder("test")
    assert folder.stat().st_mode & 0o777 == 0o700 and folder != private_folder("other")


def makers_shown(engine, settings, cache) -> list[str]:
    return sorted(
        v.caption.split(" · ")[1] for v in view.finished(engine, settings, None, cache=cache)
    )


def test_a_blind_samples_maker_is_not_shown_until_the_pick(engine, settings, tmp_path):
    """The Videos and Queue pages name an A/B sample "A/B sample", not who made it, until its
    pair is compared."""
    import numpy as np
    from sqlmodel import Session

    from reelroute.models.core.enums import InferenceProvider, Pool
    from reelroute.models.items.review import ab_pairs, judge_pair
    from reelroute.models.store.files import Storage
    from reelroute.providers.video import encode_mp4
    from reelroute.ui.views.queue import Filters, render_page
    from tests.models.helpers import claim_next_item
    from tests.models.intake.test_samples import add, sampled_group

    storage = Storage(settings.store.storage_url)
    with Session(engine, expire_on_commit=False) as session:
        group, photo = sampled_group(session)
        add(session, settings, group, photo, InferenceProvider.runway_gen4_turbo)
        for pool in (Pool.cloud, Pool.gpu):
            claim = claim_next_item(session, settings, pool)
            assert claim is not None
            from reelroute.models.items.videos import complete_with_video

            frames = [np.full((32, 48, 3), 40 + 9 * n, np.uint8) for n in range(9)]
            complete_with_video(
                session, storage, item_id=claim.item_id, group_id=group.id,
                attempt=claim.attempt, worker_id=claim.worker_id,
                video=encode_mp4(iter(frames), fps=8, width=48, height=32),
            )  # fmt: skip
            session.commit()
    makers = [
        v.caption.split(" · ")[1] for v in view.finished(engine, settings, None, cache=tmp_path)
    ]
    assert sorted(makers) == ["A/B sample", "Gen-4"]
    page = render_page(engine, settings, Filters())
    assert "A/B sample" in page.html and "WAN" not in page.html
    assert sorted(label.split(" · ")[1] for label, _ in page.choices) == ["A/B sample", "Gen-4"]
    with Session(engine) as session:
        (pair,) = ab_pairs(session)
        judge_pair(session, pair_id=pair.id, better="both")
        session.commit()
    makers = [
        v.caption.split(" · ")[1] for v in view.finished(engine, settings, None, cache=tmp_path)
    ]
    assert sorted(makers) == ["Gen-4", "WAN"]
