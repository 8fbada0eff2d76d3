"""Webhooks: the endpoints, deliveries per status, and the dead letters with a resend."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from reelroute.ui.admin.context import AdminContext
from reelroute.ui.views import webhooks as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    engine = context.engine
    gr.Markdown(
        "Item events go to the registered endpoints (`POST /api/admin/webhooks`), signed per "
        "Standard Webhooks, at least once and in order per item. A delivery that keeps failing "
        "is retried with a growing wait for a day, then lands here."
    )
    counts = gr.Markdown(elem_id="webhook-summary")
    endpoints = gr.Dataframe(
        headers=view.ENDPOINT_COLUMNS, interactive=False, label="Endpoints", wrap=True
    )
    dead = gr.Dataframe(
        headers=view.DEAD_COLUMNS, interactive=False, label="Dead letters", wrap=True
    )
    chosen = gr.CheckboxGroup(label="Dead letters to send again", choices=[], elem_id="dead")
    with gr.Row():
        resend = gr.Button("Resend selected", variant="primary")
        refresh = gr.Button("Refresh")
    message = gr.Markdown()

    def show() -> tuple[Any, Any, Any, Any]:
        return (
            view.summary(engine),
            pd.DataFrame(view.endpoint_rows(engine), columns=view.ENDPOINT_COLUMNS),
            pd.DataFrame(view.dead_rows(engine), columns=view.DEAD_COLUMNS),
            gr.update(choices=view.dead_choices(engine), value=[]),
        )

    def send_again(values: list[str]) -> tuple[Any, Any, Any, Any, Any]:
        said = view.resend(engine, values)
        return (said, *show())

    outputs = [counts, endpoints, dead, chosen]
    refresh.click(show, outputs=outputs)
    resend.click(send_again, inputs=[chosen], outputs=[message, *outputs])
    blocks.load(show, outputs=outputs)
