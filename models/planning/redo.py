"""Redo in one place: choose where a video is made again (the group's next option, by the
deadline policy) and have `items` redo the item there. Above `items` and the rest of
`planning`, it is the one function the checks (`flows.quality`), the review (admin page and
REST API) and `reelroute replay` call.

- `escalate_to_next_option`: a video that failed its checks is made again at once on the
  group's next option, as the attempt's end; or, when it cannot be (no attempt left, no other
  option, over budget), the reason it is held for a person instead.
- `reject_and_redo`: a reviewer rejects a held video; it is made again on the provider they
  name, or on the group's next option.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session

from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.errors import InvalidInput, NotFound
from reelroute.models.core.tables import VideoItem
from reelroute.models.items.lifecycle import MadeBy
from reelroute.models.items.review import escalate_item, may_escalate, reject_item
from reelroute.models.money.budgets import BudgetExceeded
from reelroute.models.planning.replanning import next_option
from reelroute.models.planning.settings import PlanningConfig
from reelroute.models.store.files import Storage

__all__ = ["escalate_to_next_option", "redo_provider", "reject_and_redo"]


def redo_provider(
    session: Session, settings: PlanningConfig, item_id: uuid.UUID
) -> InferenceProvider:
    """Who makes a video again when nobody is named: the group's next option (`next_option`).
    NotFound for an unknown item; InvalidInput when no other option can take it."""
    item = session.get(VideoItem, item_id)
    if item is None:
        raise NotFound(f"no item {item_id}")
    decision = next_option(session, settings, item)
    if decision is None:
        raise InvalidInput(["provider: no other option the group allows can take it now; name one"])
    return decision.provider


def reject_and_redo(
    session: Session,
    settings: PlanningConfig,
    storage: Storage,
    *,
    item_id: uuid.UUID,
    reason: str,
    provider: InferenceProvider | None = None,
    now: datetime | None = None,
) -> VideoItem:
    """A reviewer rejects the held video of `item_id`: it is kept aside and the item is made
    again on `provider`, or the group's next option when none is named (InvalidInput when there
    is none; BudgetExceeded when a cap says no)."""
    chosen = provider or redo_provider(session, settings, item_id)
    return reject_item(session, storage, item_id=item_id, reason=reason, provider=chosen, now=now)


def escalate_to_next_option(
    session: Session,
    settings: PlanningConfig,
    *,
    item_id: uuid.UUID,
    attempt: int,
    worker_id: str,
    reason: str,
    cost_credits: int,
    quality: dict[str, Any],
    wan_preset: str | None,
    made_by: MadeBy | None = None,
) -> str | None:
    """Make the item again on its group's next option at once (the attempt ends; its video is
    not kept). Returns why it is held for a person instead, when it cannot be: no attempt left,
    no other option, the next option over budget. StaleAttempt when the attempt lost the item."""
    item = session.get(VideoItem, item_id)
    if item is None or not may_escalate(item, settings):
        return f"{reason}; no attempt left to make it again"
    option = next_option(session, settings, item)
    if option is None:
        return f"{reason}; no other option the group allows can take it"
    try:
        escalate_item(
            session,
            item_id=item_id,
            attempt=attempt,
            worker_id=worker_id,
            provider=option.provider,
            reason=f"{reason}; {option.reason}",
            cost_credits=cost_credits,
            quality=quality,
            wan_preset=wan_preset,
            made_by=made_by,
        )
    except BudgetExceeded as error:
        return f"{reason}; the next option is over budget ({error})"
    return None
