"""Budgets: the spending caps, what each has left, and setting one."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from reelroute.models.core import BudgetPeriod, InvalidInput
from reelroute.ui.admin.context import AdminContext
from reelroute.ui.views import budgets as view
from reelroute.ui.views import new_tasks


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    engine = context.engine
    gr.Markdown(
        "Caps in dollars per UTC day or calendar month, on one paid provider, on all of them, "
        "or on one group. A paid video reserves its estimated cost when it is routed; at a cap, "
        "automatic routing takes the next option that is on time (else Wan), and a task that "
        "names a capped provider is refused."
    )
    with gr.Row():
        provider = gr.Dropdown(
            label="Provider", choices=view.paid_choices(), value="all", elem_id="budget-provider"
        )
        group = gr.Dropdown(
            label="Or one group", choices=[("No group", "")], value="", elem_id="budget-group"
        )
        period = gr.Dropdown(
            label="Period", choices=[p.value for p in BudgetPeriod], value=BudgetPeriod.day.value
        )
        cap = gr.Number(label="Cap ($)", value=None, precision=2, elem_id="budget-cap")
        save = gr.Button("Set cap", variant="primary")
    message = gr.Markdown()
    table = gr.Dataframe(headers=view.BUDGET_COLUMNS, interactive=False, label="Budgets")

    def rows() -> Any:
        return pd.DataFrame(view.budget_rows(engine), columns=view.BUDGET_COLUMNS)

    def submit(chosen: str, group_id: str, cycle: str, dollars: float | None) -> tuple[Any, Any]:
        try:
            said = view.set_cap(
                engine, provider=chosen, group_id=group_id or None, period=cycle, dollars=dollars
            )
        except InvalidInput as error:
            return new_tasks.problems_markdown(error.problems), gr.update()
        return said, rows()

    save.click(submit, inputs=[provider, group, period, cap], outputs=[message, table])

    def on_load() -> tuple[Any, Any]:
        groups = [("No group", ""), *new_tasks.group_choices(engine)]
        return gr.update(choices=groups), rows()

    blocks.load(on_load, outputs=[group, table])
