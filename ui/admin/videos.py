"""Videos: the finished videos of a group (or all), with a player."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reelroute.ui.admin.context import AdminContext
from reelroute.ui.views import new_tasks
from reelroute.ui.views import videos as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    settings, engine = context.settings, context.engine
    with gr.Row():
        group = gr.Dropdown(label="Group", choices=[("All groups", "")], value="", scale=3)
        reload = gr.Button("Refresh", scale=1)
    with gr.Row():
        gallery = gr.Gallery(
            label="Finished videos (click one to play it)",
            columns=3,
            height="auto",
            object_fit="contain",
            scale=3,
            elem_id="videos-gallery",
        )
        player = gr.Video(
            label="Player",
            autoplay=True,
            loop=True,
            interactive=False,
            scale=2,
            elem_id="video-player",
        )
        shown = gr.State([])

    def show(group_id: str | None) -> tuple[list[tuple[str, str]], list[str]]:
        videos = view.finished(engine, settings, group_id)
        return [(v.path, v.caption) for v in videos], [v.path for v in videos]

    def play(paths: list[str], selection: gr.SelectData) -> str | None:
        index = selection.index if isinstance(selection.index, int) else None
        return paths[index] if index is not None and index < len(paths) else None

    gallery.select(play, inputs=[shown], outputs=[player])

    group.change(show, inputs=[group], outputs=[gallery, shown])
    reload.click(show, inputs=[group], outputs=[gallery, shown])

    def on_load(group_id: str | None) -> tuple[Any, ...]:
        choices = [("All groups", ""), *new_tasks.group_choices(engine)]
        return (gr.update(choices=choices), *show(group_id))

    blocks.load(on_load, inputs=[group], outputs=[group, gallery, shown])
