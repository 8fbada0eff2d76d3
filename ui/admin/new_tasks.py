"""New tasks: pick or create a group, upload photos, prompt, length, inference method, add."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from reelroute.models.core import (
    AUTO,
    MAX_DURATION_S,
    MIN_DURATION_S,
    Conflict,
    GroupPriority,
    InvalidInput,
)
from reelroute.models.money import BudgetExceeded
from reelroute.ui.admin.context import AdminContext
from reelroute.ui.views import new_tasks as view


def _read(files: list[str] | None) -> list[tuple[str, bytes]]:
    return [(Path(path).name, Path(path).read_bytes()) for path in files or []]


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    settings, engine = context.settings, context.engine

    with gr.Row():
        with gr.Column(scale=2):
            group = gr.Dropdown(
                label="Group",
                choices=[],  # filled when the page loads: building the app reads no database
                value=None,
                info="The group the photos and tasks belong to; its priority drives routing.",
            )
        with gr.Column(scale=2):
            group_name = gr.Textbox(label="New group name", placeholder="e.g. Spring campaign")
        with gr.Column(scale=1):
            priority = gr.Dropdown(
                label="Priority",
                choices=[p.value for p in GroupPriority],
                value=GroupPriority.normal.value,
            )
            full_quality = gr.Checkbox(
                label="Full-quality Wan only",
                info="Its Wan videos only from GPU hosts running full or compiled.",
            )
            create = gr.Button("Create group")
    group_message = gr.Markdown()

    photos = gr.File(
        label="Photos",
        file_count="multiple",
        file_types=["image", ".heic", ".heif"],
        type="filepath",
    )
    prompt = gr.Textbox(
        label="Prompt", lines=2, placeholder="What should move, and how (e.g. waves roll in)"
    )
    per_photo = gr.Textbox(
        label="Prompts per photo (optional)",
        lines=3,
        info="One line per photo in upload order; an empty line uses the prompt above.",
    )
    with gr.Row():
        duration = gr.Slider(
            label="Duration (seconds)",
            minimum=MIN_DURATION_S,
            maximum=MAX_DURATION_S,
            step=1,
            value=5,
            info="Each model uses its allowed length nearest to this.",
        )
        frames = gr.Number(
            label="Frames (Wan only, optional)",
            value=0,
            precision=0,
            info="4k+1, e.g. 121; 0: from the duration.",
        )
        deadline = gr.Textbox(
            label="Ready within (optional)",
            placeholder="e.g. 90m, 4h",
            info="Empty: the group's time-to-video target.",
        )
    provider = gr.Dropdown(
        label="Inference method",
        choices=view.provider_choices(),
        value=AUTO,
        info="Who makes the videos. Automatic lets the routing policy choose: the cheapest "
        "option the group allows that is predicted to be on time.",
    )
    explanation = gr.Markdown(
        view.options_markdown(
            engine, settings, None, 0, 5, view.auto_choice(engine, settings, None), AUTO
        )
    )
    add = gr.Button(view.button_label(0), variant="primary")
    result = gr.Markdown()

    def explain(
        files: list[str] | None, seconds: float, chosen: str, group_id: str | None, within: str
    ) -> tuple[str, Any]:
        count = len(files or [])
        auto = view.auto_choice(engine, settings, group_id, within)
        table = view.options_markdown(
            engine, settings, group_id, count, int(seconds), auto, chosen, within
        )
        return table, gr.update(value=view.button_label(count))

    gr.on(
        [photos.change, duration.change, provider.change, group.change, deadline.change],
        explain,
        inputs=[photos, duration, provider, group, deadline],
        outputs=[explanation, add],
    )

    def create_group(name: str, level: str, full: bool) -> tuple[Any, str, str]:
        try:
            group_id = view.add_group(engine, name, level, wan_full_quality=full)
        except InvalidInput as error:
            return gr.update(), view.problems_markdown(error.problems), name
        except Conflict as error:  # the name is taken: say which group has it
            return gr.update(), view.problems_markdown([str(error)]), name
        return (
            gr.update(choices=view.group_choices(engine), value=group_id),
            f"Group **{view.escape_cell(name.strip())}** created.",
            "",
        )

    create.click(
        create_group,
        inputs=[group_name, priority, full_quality],
        outputs=[group, group_message, group_name],
    )

    def submit(
        group_id: str | None,
        files: list[str] | None,
        shared: str,
        lines: str,
        seconds: float,
        frame_num: float | None,
        chosen: str,
        within: str,
    ) -> tuple[str, Any]:
        batch = view.Batch(
            group_id=group_id,
            photos=_read(files),
            prompt=shared,
            per_photo_prompts=lines,
            duration_s=int(seconds),
            frame_num=int(frame_num) if frame_num else None,
            provider=chosen,
            deadline=within,
        )
        try:
            created = view.submit_batch(engine, settings, batch)
        except (InvalidInput, BudgetExceeded) as error:
            return view.problems_markdown(error.problems), gr.update()
        return view.result_markdown(created), gr.update(value=None)

    add.click(
        submit,
        inputs=[group, photos, prompt, per_photo, duration, frames, provider, deadline],
        outputs=[result, photos],
    )

    blocks.load(lambda: gr.update(choices=view.group_choices(engine)), outputs=[group])
