"""Review: the videos held for a person (a failed check, or a group that reviews its videos),
each beside its photo, prompt and check scores; accept it, or reject it with a reason and have
it made again."""

from __future__ import annotations

from typing import Any

import gradio as gr

from reelroute.models.core import DatabaseUnavailable
from reelroute.ui.admin.context import OUTAGE_NOTE, AdminContext
from reelroute.ui.views import review as view


def build(context: AdminContext, blocks: gr.Blocks) -> None:
    """The page's components and events (inside a gr.Tab)."""
    settings, engine = context.settings, context.engine
    gr.Markdown(
        "Videos held for a person: their automatic checks failed and the group reviews them, "
        "or the group reviews a share of its videos. Accept one to complete it, or reject it "
        "with what is wrong: it is made again (by the group's next option unless you choose), "
        "and both videos' cost stays on the item."
    )
    with gr.Row():
        pick = gr.Dropdown(label="Held video", choices=[], scale=4, elem_id="review-pick")
        reload = gr.Button("Refresh", scale=1)
    with gr.Row():
        photo = gr.Image(label="Photo", interactive=False, scale=2, elem_id="review-photo")
        video = gr.Video(
            label="Video", autoplay=True, loop=True, interactive=False, scale=3,
            elem_id="review-video",
        )  # fmt: skip
        with gr.Column(scale=3):
            about = gr.Markdown(elem_id="review-about")
            scores = gr.HTML(elem_id="review-scores-box")
    with gr.Row():
        reason = gr.Textbox(label="What is wrong (to reject)", scale=3, elem_id="review-reason")
        redo = gr.Dropdown(
            label="Make it again with",
            choices=view.redo_choices(),
            value=view.NEXT_OPTION,
            scale=2,
            elem_id="review-redo",
        )
    with gr.Row():
        accept = gr.Button("Accept", variant="primary", elem_id="review-accept")
        reject = gr.Button("Reject and redo", variant="stop", elem_id="review-reject")
    outcome = gr.Markdown(elem_id="review-outcome")
    found = gr.State({})

    def load(chosen: str | None) -> tuple[Any, ...]:
        try:
            items = view.held(engine, settings)
        except DatabaseUnavailable:
            return gr.update(), None, None, OUTAGE_NOTE, "", {}
        by_id = {str(entry.item_id): entry for entry in items}
        choices = [(entry.label, key) for key, entry in by_id.items()]
        current = chosen if chosen in by_id else (choices[0][1] if choices else None)
        entry = by_id.get(current or "")
        if entry is None:
            return gr.update(choices=[], value=None), None, None, "Nothing is held.", "", {}
        text = f"**Prompt:** {entry.prompt}\n\n**Held because:** {entry.reason}"
        return (
            gr.update(choices=choices, value=current),
            entry.photo,
            entry.video,
            text,
            entry.scores,
            {key: entry.label for key, entry in by_id.items()},
        )

    outputs = [pick, photo, video, about, scores, found]
    reload.click(load, inputs=[pick], outputs=outputs)
    pick.input(load, inputs=[pick], outputs=outputs)
    blocks.load(load, inputs=[pick], outputs=outputs)

    def on_accept(chosen: str | None) -> tuple[Any, ...]:
        if not chosen:
            return ("Pick a held video first.", *load(None))
        return (view.accept(engine, chosen), *load(None))

    def on_reject(chosen: str | None, why: str, provider: str) -> tuple[Any, ...]:
        if not chosen:
            return ("Pick a held video first.", *load(None))
        return (view.reject(engine, settings, chosen, why, provider or ""), *load(None))

    accept.click(on_accept, inputs=[pick], outputs=[outcome, *outputs])
    reject.click(on_reject, inputs=[pick, reason, redo], outputs=[outcome, *outputs])

    build_pairs(context, blocks)


def build_pairs(context: AdminContext, blocks: gr.Blocks) -> None:
    """The blind A/B pairs: two videos of one photo, A and B in an order that does not say who
    made which; the reviewer picks the better one, or both fine."""
    settings, engine = context.settings, context.engine
    gr.Markdown(
        "### Blind A/B samples\n"
        "A share of some groups' items is also made by a second provider (the group's shadow "
        "rate, paid from the shadow budget). Which video is which is not shown: pick the "
        "better one, or both fine. The Statistics page counts the wins, losses and ties."
    )
    with gr.Row():
        choose = gr.Dropdown(label="Pair", choices=[], scale=4, elem_id="ab-pick")
        again = gr.Button("Refresh", scale=1, elem_id="ab-refresh")
    with gr.Row():
        photo = gr.Image(label="Photo", interactive=False, scale=2, elem_id="ab-photo")
        first = gr.Video(label="A", loop=True, interactive=False, scale=3, elem_id="ab-a")
        second = gr.Video(label="B", loop=True, interactive=False, scale=3, elem_id="ab-b")
    about = gr.Markdown(elem_id="ab-about")
    with gr.Row():
        a_better = gr.Button("A is better", elem_id="ab-a-better")
        b_better = gr.Button("B is better", elem_id="ab-b-better")
        both = gr.Button("Both fine", elem_id="ab-both")
    outcome = gr.Markdown(elem_id="ab-outcome")

    def load(chosen: str | None) -> tuple[Any, ...]:
        try:
            shown = view.pairs(engine, settings)
        except DatabaseUnavailable:
            return gr.update(), None, None, None, OUTAGE_NOTE
        by_id = {str(entry.pair_id): entry for entry in shown}
        choices = [(entry.label, key) for key, entry in by_id.items()]
        current = chosen if chosen in by_id else (choices[0][1] if choices else None)
        entry = by_id.get(current or "")
        if entry is None:
            return gr.update(choices=[], value=None), None, None, None, "No pair waits."
        return (
            gr.update(choices=choices, value=current),
            entry.photo,
            entry.a,
            entry.b,
            f"**Prompt:** {entry.prompt}",
        )

    outputs = [choose, photo, first, second, about]
    again.click(load, inputs=[choose], outputs=outputs)
    choose.input(load, inputs=[choose], outputs=outputs)
    blocks.load(load, inputs=[choose], outputs=outputs)

    def picker(better: str) -> Any:
        def on_pick(chosen: str | None) -> tuple[Any, ...]:
            if not chosen:
                return ("Pick a pair first.", *load(None))
            return (view.pick_better(engine, chosen, better), *load(None))

        return on_pick

    for button, better in ((a_better, "a"), (b_better, "b"), (both, "both")):
        button.click(picker(better), inputs=[choose], outputs=[outcome, *outputs])
