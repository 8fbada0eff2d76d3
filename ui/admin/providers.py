"""Providers: each Runway model's, GPU host's and pool's health (its circuit breaker), and who
runs the background loops."""

from __future__ import annotations

import gradio as gr

from reelroute.models.core import DatabaseUnavailable
from reelroute.ui.admin.context import OUTAGE_NOTE, REFRESH_SECONDS, AdminContext
from reelroute.ui.views import providers as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    engine = context.engine
    gr.Markdown(
        "A model, a GPU host or a pool whose attempts keep failing is closed for a while: "
        "routing sends its automatic items elsewhere when they would still be on time, items "
        "that name it wait (the queue says why), and after a cooldown one item probes it. "
        "Failures are counted by class (docs/reliability.md)."
    )
    table = gr.HTML()
    gr.Markdown(
        "### Background loops\n"
        "The dispatcher (with the planner and the reconciler) and the webhook sender may run "
        "on several hosts: on PostgreSQL one leads and the others stand by, ready to take over "
        "(docs/operations.md). SQLite runs one of each."
    )
    loops = gr.HTML()
    timer = gr.Timer(REFRESH_SECONDS)

    def draw() -> tuple[str, str]:
        try:
            return view.render(view.read(engine)), view.render_loops(view.read_loops(engine))
        except DatabaseUnavailable:
            return OUTAGE_NOTE, ""

    timer.tick(draw, outputs=[table, loops])
    blocks.load(draw, outputs=[table, loops])
