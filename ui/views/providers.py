"""The Providers page without Gradio: each Runway model's, GPU host's and pool's breaker, why it
opened, the next probe, and its failures by class; and the background loops: who leads the
dispatcher and the webhook sender, how many stand by, and each loop's last pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

import sqlalchemy as sa

from reelroute.models.core import BreakerState, clock, duration, utcnow
from reelroute.models.health import LoopBeat, RoleView, read_beats, read_roles
from reelroute.models.reporting import ProviderHealth, provider_health
from reelroute.models.store import session_scope

STATE_CLASSES = {
    BreakerState.closed: "rr-ontime",
    BreakerState.open: "rr-late",
    BreakerState.half_open: "rr-pending",
}
STATE_WORDS = {
    BreakerState.closed: "available",
    BreakerState.open: "unavailable",
    BreakerState.half_open: "probing",
}


def read(engine: sa.Engine, now: datetime | None = None) -> list[ProviderHealth]:
    """Every breaker as the page shows it."""
    with session_scope(engine) as session:
        return provider_health(session, now)


def _counts(by_class: dict[str, int]) -> str:
    if not by_class:
        return "-"
    return ", ".join(f"{kind} {count}" for kind, count in sorted(by_class.items()))


def render(found: list[ProviderHealth], now: datetime | None = None) -> str:
    """The table (every value escaped)."""
    now = now or utcnow()
    rows = []
    for entry in found:
        badge = (
            f'<span class="rr-badge {STATE_CLASSES[entry.state]}" data-state="{entry.state.value}">'
            f"{STATE_WORDS[entry.state]}</span>"
        )
        since = clock(entry.opened_at, now) if entry.opened_at else "-"
        probe = (
            "under way"
            if entry.state is BreakerState.half_open
            else (clock(entry.next_probe_at, now) if entry.next_probe_at else "-")
        )
        reason = escape(entry.reason or "") if entry.state is not BreakerState.closed else ""
        detail = f"<br><small>{escape(entry.detail)}</small>" if entry.detail else ""
        rows.append(
            f'<tr data-name="{escape(entry.name)}">'
            f"<td>{escape(entry.label)}{detail}</td>"
            f"<td>{escape(entry.kind)}</td>"
            f"<td>{badge}</td>"
            f"<td>{since}</td>"
            f"<td>{reason or '-'}</td>"
            f"<td>{probe}</td>"
            f"<td>{escape(_counts(entry.failures_hour))}</td>"
            f"<td>{escape(_counts(entry.failures_day))}</td>"
            "</tr>"
        )
    header = "".join(
        f"<th>{name}</th>"
        for name in (
            "Provider",
            "Kind",
            "State",
            "Since (UTC)",
            "Why",
            "Next probe (UTC)",
            "Failures, last hour",
            "Failures, last day",
        )
    )
    return (
        f'<table class="rr-table" id="providers-table"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


LOOP_ROLES = {"dispatcher": "dispatcher", "reconciler": "dispatcher", "webhooks": "webhooks"}
"""Each heartbeat loop and the led role it runs in (the reconciler runs in the dispatcher)."""


@dataclass(frozen=True)
class Loops:
    """The led roles and the loops' last passes."""

    roles: list[RoleView]
    beats: list[LoopBeat]


def read_loops(engine: sa.Engine, now: datetime | None = None) -> Loops:
    """Who leads, who stands by, and each loop's last recorded pass."""
    with session_scope(engine) as session:
        return Loops(roles=read_roles(session, now=now), beats=read_beats(session))


def render_loops(found: Loops, now: datetime | None = None) -> str:
    """The background loops' table (every value escaped)."""
    now = now or utcnow()
    roles = {role.role: role for role in found.roles}
    beats = {beat.name: beat for beat in found.beats}
    rows = []
    for loop, role_name in LOOP_ROLES.items():
        role = roles.get(role_name)
        if role is not None and role.leader:
            badge = (
                f'<span class="rr-badge rr-ontime" data-state="led">{escape(role.leader)}</span>'
            )
            since = clock(role.leading_since, now) if role.leading_since else "-"
        else:
            badge = '<span class="rr-badge rr-late" data-state="unled">nobody leads</span>'
            since = "-"
        beat = beats.get(loop)
        last = (
            f"{duration((now - beat.beat_at).total_seconds())} ago on {escape(beat.host)}, "
            f"{'ok' if beat.ok else 'failed'} ({beat.took_seconds:.1f} s)"
            if beat
            else "never"
        )
        rows.append(
            f'<tr data-loop="{loop}">'
            f"<td>{loop}</td>"
            f"<td>{badge}</td>"
            f"<td>{since}</td>"
            f"<td>{role.standbys if role else 0}</td>"
            f"<td>{last}</td>"
            "</tr>"
        )
    header = "".join(
        f"<th>{name}</th>"
        for name in ("Loop", "Leader", "Leading since (UTC)", "Standbys", "Last pass")
    )
    return (
        f'<table class="rr-table" id="loops-table"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
