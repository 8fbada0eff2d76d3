"""Webhooks: the endpoints, deliveries per status, and the dead letters with a resend."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from reelroute.ui.admin.context import AdminContext
from reelroute.ui.views import webhooks as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    engine, settings = context.engine, context.settings
    gr.Markdown(
        "Item events go to the registered endpoints (`POST /api/admin/webhooks`), signed per "
        "Standard Webhooks, at least once and in order per item. A delivery that keeps failing "
        "is retried with a growing wait for a day, then lands here."
    )
    counts = gr.Markdown(elem_id="webhook-summary")
    endpoints = gr.Dataframe(
        headers=view.ENDPOINT_COLUMNS, interactive=False, label="Endpoints", wrap=True
    )
    picked = gr.CheckboxGroup(label="Endpoints to act on", choices=[], elem_id="endpoints")
    with gr.Row():
        action_buttons = {
            action: gr.Button(label, elem_id=f"endpoint-{action}")
            for action, label in (
                ("disable", "Disable"),
                ("enable", "Enable"),
                ("rotate", "Rotate secret"),
                ("delete", "Delete"),
            )
        }
    endpoint_message = gr.Markdown(elem_id="endpoint-message")
    dead = gr.Dataframe(
        headers=view.DEAD_COLUMNS, interactive=False, label="Dead letters", wrap=True
    )
    chosen = gr.CheckboxGroup(label="Dead letters to send again", choices=[], elem_id="dead")
    with gr.Row():
        resend = gr.Button("Resend selected", variant="primary")
        refresh = gr.Button("Refresh")
    message = gr.Markdown()

    def show() -> tuple[Any, Any, Any, Any, Any]:
        return (
            view.summary(engine),
            pd.DataFrame(view.endpoint_rows(engine), columns=view.ENDPOINT_COLUMNS),
            gr.update(choices=view.endpoint_choices(engine), value=[]),
            pd.DataFrame(view.dead_rows(engine), columns=view.DEAD_COLUMNS),
            gr.update(choices=view.dead_choices(engine), value=[]),
        )

    def send_again(values: list[str]) -> tuple[Any, ...]:
        said = view.resend(engine, values)
        return (said, *show())

    outputs = [counts, endpoints, picked, dead, chosen]
    refresh.click(show, outputs=outputs)
    resend.click(send_again, inputs=[chosen], outputs=[message, *outputs])
    for action, button in action_buttons.items():

        def act(values: list[str], action: str = action) -> tuple[Any, ...]:
            return (view.act_on_endpoints(engine, settings, action, values), *show())

        button.click(act, inputs=[picked], outputs=[endpoint_message, *outputs])
    blocks.load(show, outputs=outputs)
