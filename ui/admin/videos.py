"""Videos: the finished videos of a group (or all), with a player."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.admin.context import AdminContext
from ui.views import new_tasks
from ui.views import videos as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    settings, engine = context.settings, context.engine
    with gr.Row():
        group = gr.Dropdown(label="Group", choices=[("All groups", "")], value="", scale=3)
        reload = gr.Button("Refresh", scale=1)
    gallery = gr.Gallery(label="Finished videos", columns=4, height="auto", object_fit="contain")

    def show(group_id: str | None) -> list[tuple[str, str]]:
        return [(v.path, v.caption) for v in view.finished(engine, settings, group_id)]

    group.change(show, inputs=[group], outputs=[gallery])
    reload.click(show, inputs=[group], outputs=[gallery])

    def on_load(group_id: str | None) -> tuple[Any, list[tuple[str, str]]]:
        choices = [("All groups", ""), *new_tasks.group_choices(engine)]
        return gr.update(choices=choices), show(group_id)

    blocks.load(on_load, inputs=[group], outputs=[group, gallery])
