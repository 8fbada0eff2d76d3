"""Queue: the items newest first with badges, filters, paging, auto-refresh, cancel and retry."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reelroute.models.core import DatabaseUnavailable, InvalidInput
from reelroute.ui.admin.context import OUTAGE_NOTE, REFRESH_SECONDS, AdminContext
from reelroute.ui.views import new_tasks
from reelroute.ui.views import queue as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    settings, engine = context.settings, context.engine

    with gr.Row():
        provider = gr.Dropdown(
            label="Inference method", choices=view.provider_filter_choices(), value=view.ALL
        )
        status = gr.Dropdown(label="Status", choices=view.status_filter_choices(), value=view.ALL)
        group = gr.Dropdown(label="Group", choices=[("All groups", view.ALL)], value=view.ALL)
        auto = gr.Checkbox(label="Refresh by itself", value=True)
    # Page state: the cursors of this page (last) and the pages before it, and where the next
    # older page starts (None on the last page).
    cursors = gr.State([])
    older_cursor = gr.State(None)
    table = gr.HTML(label="Queue")
    with gr.Row():
        newer = gr.Button("◀ Newer", size="sm", scale=0, min_width=120)
        page_info = gr.Markdown()
        older = gr.Button("Older ▶", size="sm", scale=0, min_width=120)
    selected = gr.CheckboxGroup(label="Selected items", choices=[])
    with gr.Row():
        cancel = gr.Button("Cancel selected", variant="stop")
        retry = gr.Button("Retry selected")
    outcome = gr.Markdown()
    timer = gr.Timer(REFRESH_SECONDS)

    def show(
        provider_value: str,
        status_value: str,
        group_value: str | None,
        stack: list[str | None],
        chosen: list[str],
    ) -> tuple[Any, ...]:
        try:
            filters = view.Filters.parse(provider_value, status_value, group_value)
        except InvalidInput as error:
            return gr.update(), "; ".join(error.problems), gr.update(), stack, None
        page = view.render_page(
            engine,
            settings,
            filters,
            cursor=stack[-1] if stack else None,
            prefect_ui_url=context.prefect_ui_url,
        )
        where = f"page {len(stack) + 1}, {page.shown} item(s)"
        ids = {value for _, value in page.choices}
        return (
            page.html,
            where + (" · more are older" if page.next_cursor else ""),
            gr.update(choices=page.choices, value=[c for c in chosen or [] if c in ids]),
            stack,
            page.next_cursor,
        )

    filters = [provider, status, group]
    outputs = [table, page_info, selected, cursors, older_cursor]

    def first_page(p: str, s: str, g: str | None, chosen: list[str]) -> tuple[Any, ...]:
        return show(p, s, g, [], chosen)

    for component in filters:
        component.change(first_page, inputs=[*filters, selected], outputs=outputs)

    def go_older(
        p: str, s: str, g: str | None, stack: list[str | None], following: str | None
    ) -> tuple[Any, ...]:
        return show(p, s, g, [*stack, following] if following else stack, [])

    def go_newer(p: str, s: str, g: str | None, stack: list[str | None]) -> tuple[Any, ...]:
        return show(p, s, g, stack[:-1], [])

    older.click(go_older, inputs=[*filters, cursors, older_cursor], outputs=outputs)
    newer.click(go_newer, inputs=[*filters, cursors], outputs=outputs)

    def tick(
        p: str, s: str, g: str | None, stack: list[str | None], chosen: list[str], on: bool
    ) -> tuple[Any, ...]:
        if not on:
            return tuple(gr.skip() for _ in outputs)
        try:
            return show(p, s, g, stack, chosen)
        except DatabaseUnavailable:  # keep what is shown; the next tick tries again
            return (gr.skip(), OUTAGE_NOTE, *(gr.skip() for _ in outputs[2:]))

    timer.tick(
        tick, inputs=[*filters, cursors, selected, auto], outputs=outputs, show_progress="hidden"
    )

    def act(action: str) -> Any:
        def run(
            chosen: list[str], p: str, s: str, g: str | None, stack: list[str | None]
        ) -> tuple[Any, ...]:
            message = view.act_on(engine, settings, action, chosen or [])
            return (message, *show(p, s, g, stack, []))

        return run

    cancel.click(act("cancel"), inputs=[selected, *filters, cursors], outputs=[outcome, *outputs])
    retry.click(act("retry"), inputs=[selected, *filters, cursors], outputs=[outcome, *outputs])

    def on_load(chosen: list[str]) -> tuple[Any, ...]:
        groups = gr.update(choices=[("All groups", view.ALL), *new_tasks.group_choices(engine)])
        return (groups, *show(view.ALL, view.ALL, None, [], chosen))

    blocks.load(on_load, inputs=[selected], outputs=[group, *outputs])
