"""The Review page without Gradio: the videos held for a person, each with its photo, prompt,
video and check scores; accept, or reject with a reason and who makes it again; and the blind
A/B pairs, two videos of one photo in an order that does not say who made which."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reelroute.models.assembly import Settings
from reelroute.models.core import (
    CATALOGUE,
    InferenceProvider,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Photo,
    info,
)
from reelroute.models.items import ab_pairs, accept_item, judge_pair, review_queue
from reelroute.models.money import BudgetExceeded
from reelroute.models.planning import reject_and_redo
from reelroute.models.store import Storage, session_scope
from reelroute.ui.views.queue import PROVIDER_BADGES
from reelroute.ui.views.videos import local_copy, private_folder, write_new

NEXT_OPTION = ""
"""The redo choice that lets the group's routing pick (its next option)."""
CHECK_WORDS = {
    "decodes": "decodes",
    "length": "length (frames or s)",
    "fps": "frames per second",
    "resolution": "aspect (w/h)",
    "blank": "brightness spread (0-255)",
    "frozen": "motion (0-255)",
    "flicker": "largest brightness jump",
    "first_frame": "first frame vs photo (SSIM)",
}


@dataclass(frozen=True)
class Held:
    """One held item as the page shows it."""

    item_id: uuid.UUID
    label: str
    prompt: str
    reason: str
    photo: str | None
    video: str | None
    scores: str
    """The check scores, as an HTML table."""


def redo_choices() -> list[tuple[str, str]]:
    """The redo provider dropdown: the group's next option, then every provider."""
    return [("The group's next option", NEXT_OPTION)] + [
        (entry.label, provider.value) for provider, entry in CATALOGUE.items()
    ]


def held(engine: sa.Engine, settings: Settings, *, cache: Path | None = None) -> list[Held]:
    """The items held for a person, the longest waiting first, with local copies of their
    photo and video."""
    storage = Storage(settings.store.storage_url)
    folder = cache or private_folder("review")
    folder.mkdir(parents=True, exist_ok=True)
    found = []
    with session_scope(engine) as session:
        for item in review_queue(session):
            photo = session.get(Photo, item.photo_id) if item.photo_id else None
            badge = PROVIDER_BADGES[item.inference_provider][0]
            found.append(
                Held(
                    item_id=item.id,
                    label=f"{str(item.id)[:8]} · {badge} · {item.prompt[:50]}",
                    prompt=item.prompt,
                    reason=item.review_reason or "",
                    photo=_copy(storage, photo.storage_path if photo else None, folder),
                    video=_copy(storage, item.output_path, folder),
                    scores=render_scores(item.quality),
                )
            )
    return found


def _copy(storage: Storage, stored: str | None, folder: Path) -> str | None:
    if stored is None or not storage.exists(stored):
        return None
    try:
        return local_copy(storage, stored, folder)
    except NotFound:
        return None


def render_scores(quality: dict[str, Any] | None) -> str:
    """The checks of a video: each score, and why a failed one failed (every value escaped)."""
    if not quality:
        return "<p>No checks were made (REELROUTE_QUALITY_CHECKS=false when it was made).</p>"
    failed = quality.get("failed") or {}
    rows = []
    for name, score in (quality.get("scores") or {}).items():
        ok = name not in failed
        badge = (
            f'<span class="rr-badge {"rr-ontime" if ok else "rr-late"}" '
            f'data-check="{escape(name)}" data-passed="{str(ok).lower()}">'
            f"{'passed' if ok else 'failed'}</span>"
        )
        rows.append(
            f"<tr><td>{escape(CHECK_WORDS.get(name, name))}</td><td>{float(score):.3g}</td>"
            f"<td>{badge}</td><td>{escape(str(failed.get(name, '')))}</td></tr>"
        )
    seconds = quality.get("seconds")
    took = f"<p><small>Checked in {float(seconds):.2f} s.</small></p>" if seconds else ""
    return (
        '<table class="rr-table" id="review-scores"><thead><tr><th>Check</th><th>Score</th>'
        f"<th></th><th>Why</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{took}"
    )


def accept(engine: sa.Engine, item_id: str) -> str:
    """Accept the held video; what happened, in a sentence."""
    try:
        with session_scope(engine) as session:
            accept_item(session, item_id=uuid.UUID(item_id))
        return f"`{item_id[:8]}` accepted: completed."
    except (ValueError, NotFound, InvalidTransition) as error:
        return f"`{item_id[:8]}` not accepted: {escape(str(error))}"


def reject(engine: sa.Engine, settings: Settings, item_id: str, reason: str, provider: str) -> str:
    """Reject the held video and have it made again on `provider` (NEXT_OPTION: the group's
    next option); what happened, in a sentence."""
    try:
        with session_scope(engine) as session:
            item = reject_and_redo(
                session,
                settings,
                Storage(settings.store.storage_url),
                item_id=uuid.UUID(item_id),
                reason=reason,
                provider=InferenceProvider(provider) if provider else None,
            )
        return f"`{item_id[:8]}` rejected: made again on {info(item.inference_provider).label}."
    except (ValueError, NotFound, InvalidTransition, InvalidInput, BudgetExceeded) as error:
        return f"`{item_id[:8]}` not rejected: {escape(str(error))}"


# --- blind A/B comparisons -------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One A/B pair as the page shows it: the photo, the prompt and two videos, A and B, with
    no word of who made which."""

    pair_id: uuid.UUID
    label: str
    prompt: str
    photo: str | None
    a: str | None
    b: str | None


def pairs(engine: sa.Engine, settings: Settings, *, cache: Path | None = None) -> list[Shown]:
    """The A/B pairs waiting for a pick, the oldest first, with local copies of the photo and
    both videos (named by the pair and A or B, never by the item)."""
    storage = Storage(settings.store.storage_url)
    folder = cache or private_folder("review")
    found = []
    with session_scope(engine) as session:
        for number, pair in enumerate(ab_pairs(session), start=1):
            photo = session.get(Photo, pair.item.photo_id) if pair.item.photo_id else None
            # Copies named A and B (a stored video's path names its item).
            where = folder / f"pair-{pair.id.hex}"
            where.mkdir(parents=True, exist_ok=True)
            copies: dict[str, str | None] = {}
            for side, shown in (("a", pair.a), ("b", pair.b)):
                copies[side] = _blind_copy(storage, shown.output_path, where / f"{side}.mp4")
            found.append(
                Shown(
                    pair_id=pair.id,
                    label=f"pair {number} · {pair.item.prompt[:50]}",
                    prompt=pair.item.prompt,
                    photo=_copy(storage, photo.storage_path if photo else None, folder),
                    a=copies["a"],
                    b=copies["b"],
                )
            )
    return found


def _blind_copy(storage: Storage, stored: str | None, target: Path) -> str | None:
    if stored is None or not storage.exists(stored):
        return None
    if not target.exists():
        write_new(target, storage.read(stored))
    return str(target)


def pick_better(engine: sa.Engine, pair_id: str, better: str) -> str:
    """Record the reviewer's pick (`a`, `b` or `both`); what happened, in a sentence that
    names who made which only now."""
    words = {"a": "A is better", "b": "B is better", "both": "both fine"}
    try:
        with session_scope(engine) as session:
            done = judge_pair(session, pair_id=uuid.UUID(pair_id), better=better)
        made = (
            f"{info(InferenceProvider(done.item_provider)).label} made the item's video, "
            f"{info(InferenceProvider(done.shadow_provider)).label} the sample's"
        )
        return f"Recorded: {words.get(better, better)} ({made})."
    except (ValueError, NotFound, InvalidTransition, InvalidInput) as error:
        return f"Not recorded: {escape(str(error))}"
