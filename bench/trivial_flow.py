"""The floor of a flow run: a flow that does nothing, deployed like generate-video."""

from __future__ import annotations

from prefect import flow


@flow(name="noop", persist_result=False)
def noop(item_id: str = "", attempt: int = 0) -> str:
    """Return at once: what Prefect itself costs per flow run."""
    return item_id
