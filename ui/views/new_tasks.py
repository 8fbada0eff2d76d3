"""The New tasks page without Gradio: the provider options with their cost for a batch, the
button's label, and adding a batch (photos and items in one transaction, all or none)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from reelroute.models.assembly import Settings
from reelroute.models.core import (
    AUTO,
    CATALOGUE,
    Group,
    GroupPriority,
    InferenceProvider,
    InvalidInput,
    TaskSpec,
    duration,
    from_now,
    info,
    nearest_duration,
    utcnow,
)
from reelroute.models.intake import Intake, PhotoTask, Upload, deadline_from_text, outlook, take_in
from reelroute.models.items import create_group, list_groups
from reelroute.models.store import Storage, session_scope

AUTO_LABEL = "Automatic (routing rules)"


def provider_choices() -> list[tuple[str, str]]:
    """The select's options, (label, value): the seed's three labels, then `auto`."""
    return [(entry.label, provider.value) for provider, entry in CATALOGUE.items()] + [
        (AUTO_LABEL, AUTO)
    ]


def group_choices(engine: sa.Engine) -> list[tuple[str, str]]:
    """The groups to pick from, newest first, as (label, id)."""
    with session_scope(engine) as session:
        return [(f"{g.name} · {g.priority.value}", str(g.id)) for g in list_groups(session)]


def add_group(
    engine: sa.Engine, name: str, priority: str, *, wan_full_quality: bool = False
) -> str:
    """Create a group; returns its id. InvalidInput says what is wrong with the name."""
    try:
        level = GroupPriority(priority)
    except ValueError:
        choices = ", ".join(p.value for p in GroupPriority)
        raise InvalidInput([f"priority: {priority!r} is not one of {choices}"]) from None
    with session_scope(engine) as session:
        group = create_group(session, name=name, priority=level, wan_full_quality=wan_full_quality)
        return str(group.id)


def button_label(photo_count: int) -> str:
    """The seed's button, with the number of tasks it will create."""
    return f"Add video generation tasks ({photo_count})"


@dataclass(frozen=True)
class Option:
    """One row of the options table: what a choice means for this batch."""

    label: str
    description: str
    video_seconds: int
    expected_time: str
    cost: str


def options(
    engine: sa.Engine,
    settings: Settings,
    group_id: str | None,
    photo_count: int,
    duration_s: int,
    deadline: str = "",
) -> list[Option]:
    """Each provider's description, the predicted finish of this batch (its queue replayed on
    its slots with the measured service times; models.intake.batches.outlook), and the cost
    estimate for `photo_count` videos of about `duration_s` seconds."""
    count = max(photo_count, 0)
    finishes: dict[InferenceProvider, str] = {}
    unknown = "pick a group and photos for a prediction"
    try:
        within = deadline_from_text(deadline, field="Ready within")
    except InvalidInput as error:
        within, unknown, group_id = None, error.problems[0], None  # said in every row
    if group_id and count:
        task = TaskSpec(prompt="preview", duration_s=duration_s, deadline_seconds=within)
        with session_scope(engine) as session:
            now = utcnow()
            _, outlooks = outlook(
                session, group_id=uuid.UUID(group_id), settings=settings, task=task, count=count
            )
        for predicted in outlooks:
            verdict = "on time" if predicted.on_time else "**late**"
            finishes[predicted.provider] = (
                f"all {count} done {from_now(predicted.finish, now)}, {verdict}"
            )
    rows = []
    for provider, entry in CATALOGUE.items():
        seconds = nearest_duration(entry, duration_s)
        timing = finishes.get(provider, unknown)
        credits = entry.estimate_credits(seconds) * count
        cost = (
            "free (our GPUs)"
            if provider is InferenceProvider.wan_local
            else (f"${credits / 100:,.2f} ({credits:,} credits)")
        )
        rows.append(Option(entry.label, entry.description, seconds, timing, cost))
    return rows


def auto_choice(
    engine: sa.Engine, settings: Settings, group_id: str | None, deadline: str = ""
) -> str:
    """What `auto` picks for a new item of this group right now, and why."""
    if not group_id:
        return "pick a group to see what the routing policy chooses"
    try:
        within = deadline_from_text(deadline, field="Ready within")
    except InvalidInput as error:
        return f"nothing yet: {error.problems[0]}"
    task = TaskSpec(prompt="preview", deadline_seconds=within)
    with session_scope(engine) as session:
        if session.get(Group, uuid.UUID(group_id)) is None:
            return f"no group {group_id}"
        decision, _ = outlook(
            session, group_id=uuid.UUID(group_id), settings=settings, task=task, count=1
        )
    return f"{info(decision.provider).label}, because {decision.reason}"


def options_markdown(
    engine: sa.Engine,
    settings: Settings,
    group_id: str | None,
    photo_count: int,
    duration_s: int,
    auto: str,
    chosen: str,
    deadline: str = "",
) -> str:
    """The options table as Markdown, the chosen one in bold."""
    chosen_label = dict((value, label) for label, value in provider_choices()).get(chosen, "")
    lines = [
        f"**{photo_count} photo(s), about {duration(duration_s)} each**",
        "",
        "| Inference method | What it is | Video | Predicted finish | Cost estimate |",
        "|---|---|---|---|---|",
    ]
    for option in options(engine, settings, group_id, photo_count, duration_s, deadline):
        label = f"**{option.label}**" if option.label == chosen_label else option.label
        lines.append(
            f"| {label} | {option.description} | {option.video_seconds} s | "
            f"{option.expected_time} | {option.cost} |"
        )
    auto_label = f"**{AUTO_LABEL}**" if chosen == AUTO else AUTO_LABEL
    lines.append(f"| {auto_label} | The routing policy chooses per item: now {auto} | | | |")
    return "\n".join(lines)


@dataclass
class Batch:
    """What the admin filled in."""

    group_id: str | None
    photos: list[tuple[str, bytes]]
    """(filename, content) of each uploaded photo, in upload order."""
    prompt: str
    per_photo_prompts: str = ""
    """One line per photo, in upload order; an empty or missing line uses `prompt`."""
    duration_s: int = 5
    frame_num: int | None = None
    provider: str = AUTO
    deadline: str = ""
    """Ready within (e.g. `90m`, `4h`); empty: the group's target."""


@dataclass(frozen=True)
class Created:
    """One created item, for the result table."""

    item_id: uuid.UUID
    photo: str
    provider: str
    routed_by: str
    reason: str


def _prompts(batch: Batch) -> list[str]:
    lines = batch.per_photo_prompts.splitlines() if batch.per_photo_prompts.strip() else []
    if len(lines) > len(batch.photos):
        raise InvalidInput(
            [
                f"prompts per photo: {len(lines)} lines for {len(batch.photos)} photo(s); "
                "give one line per photo at most"
            ]
        )
    return [
        (lines[i].strip() if i < len(lines) and lines[i].strip() else batch.prompt)
        for i in range(len(batch.photos))
    ]


def submit_batch(engine: sa.Engine, settings: Settings, batch: Batch) -> list[Created]:
    """Store the photos and create one item per photo in one transaction: every item or none
    (models.intake.submit.take_in). Raises InvalidInput with every problem found, each naming
    its photo (nothing is written then)."""
    problems = []
    if not batch.group_id:
        problems.append("group: none chosen; pick a group or create one")
    if not batch.photos:
        problems.append("photos: none uploaded; add at least one image")
    if problems:
        raise InvalidInput(problems)
    assert batch.group_id is not None
    deadline = deadline_from_text(batch.deadline)
    photo_tasks = [
        PhotoTask(
            Upload(name, data),
            TaskSpec(
                prompt=prompt,
                duration_s=batch.duration_s,
                frame_num=batch.frame_num,
                inference_provider=batch.provider,
                deadline_seconds=deadline,
            ),
        )
        for (name, data), prompt in zip(batch.photos, _prompts(batch), strict=True)
    ]
    with session_scope(engine) as session:
        intake = Intake(group_id=uuid.UUID(batch.group_id), photo_tasks=photo_tasks)
        done = take_in(
            session, intake, settings=settings, storage=Storage(settings.store.storage_url)
        )
        return [
            Created(
                item_id=item.id,
                photo=name,
                provider=info(item.inference_provider).label,
                routed_by=item.routed_by.value if item.routed_by else "",
                reason=item.route_reason or "",
            )
            for item, (name, _) in zip(done.items, batch.photos, strict=True)
        ]


def result_markdown(created: list[Created]) -> str:
    """The result table: each item's provider and why it was chosen."""
    lines = [
        f"**{len(created)} task(s) added.** They are in the queue.",
        "",
        "| Item | Photo | Inference method | Chosen by | Why |",
        "|---|---|---|---|---|",
    ]
    for row in created:
        lines.append(
            f"| `{str(row.item_id)[:8]}` | {escape_cell(row.photo)} | {row.provider} | "
            f"{row.routed_by} | {escape_cell(row.reason)} |"
        )
    return "\n".join(lines)


def problems_markdown(problems: list[str]) -> str:
    """An error answer: nothing was added, and what to fix."""
    return "**Nothing was added.** Fix this and try again:\n\n" + "\n".join(
        f"- {escape_cell(p)}" for p in problems
    )


def escape_cell(text: str) -> str:
    """Text safe inside a Markdown table cell (no pipes, no HTML)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")
