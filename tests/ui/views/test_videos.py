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
