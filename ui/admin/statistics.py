"""Statistics: the per-provider table and charts, refreshed when the counts change."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from reelroute.models.core import DatabaseUnavailable
from reelroute.ui.admin.context import OUTAGE_NOTE, REFRESH_SECONDS, AdminContext
from reelroute.ui.views import statistics as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    engine = context.engine
    headline = gr.Markdown()
    table = gr.Dataframe(headers=view.TABLE_COLUMNS, interactive=False, label="Per provider")
    with gr.Row():
        by_status = gr.BarPlot(
            x="provider",
            y="items",
            color="status",
            color_map=view.STATUS_COLOUR_MAP,
            title="Items by status",
            x_title="Inference method",
            y_title="Items",
        )
        spend = gr.BarPlot(
            x="provider", y="dollars", title="Spend", x_title="Inference method", y_title="$"
        )
    with gr.Row():
        finish = gr.BarPlot(  # a bar per provider and measure: p90 beside the median
            x="bar",
            y="minutes",
            color="measure",
            color_map=view.MEASURE_COLOUR_MAP,
            sort=None,
            title="Time to finish (created → video)",
            x_title="Inference method",
            y_title="Minutes",
        )
    budgets = gr.Dataframe(
        headers=view.BUDGET_COLUMNS, interactive=False, label="Spend against budget"
    )
    redos = gr.Dataframe(
        headers=view.REDO_COLUMNS,
        interactive=False,
        label="Videos made again (rejected on the Review page, or escalated by a failed check)",
    )
    acceptance = gr.Dataframe(
        headers=view.ACCEPTANCE_COLUMNS,
        interactive=False,
        label="Videos kept: per provider, Wan preset and group, with the share routing expects",
        elem_id="statistics-acceptance",
    )
    # The counts the page shows now: a tick redraws only when they changed.
    shown = gr.State("")
    timer = gr.Timer(REFRESH_SECONDS)

    def draw() -> tuple[Any, ...]:
        stats = view.read(engine)
        return (
            view.summary(stats),
            pd.DataFrame(view.table(stats), columns=view.TABLE_COLUMNS),
            pd.DataFrame(view.status_rows(stats)),
            pd.DataFrame(view.spend_rows(stats)),
            pd.DataFrame(
                view.finish_rows(stats), columns=["provider", "bar", "measure", "minutes"]
            ),
            pd.DataFrame(view.budget_rows(engine), columns=view.BUDGET_COLUMNS),
            pd.DataFrame(view.redo_rows(engine), columns=view.REDO_COLUMNS),
            pd.DataFrame(
                view.acceptance_rows(engine, context.settings), columns=view.ACCEPTANCE_COLUMNS
            ),
        )

    outputs = [headline, table, by_status, spend, finish, budgets, redos, acceptance, shown]

    def refresh(last: str) -> tuple[Any, ...]:
        try:
            now = view.fingerprint(engine)
            if now == last:
                return tuple(gr.skip() for _ in outputs)
            return (*draw(), now)
        except DatabaseUnavailable:  # keep what is shown; the next tick tries again
            return (OUTAGE_NOTE, *(gr.skip() for _ in outputs[1:]))

    timer.tick(refresh, inputs=[shown], outputs=outputs, show_progress="hidden")
    blocks.load(lambda: (*draw(), view.fingerprint(engine)), outputs=outputs)
