"""What every admin page gets: settings, the database engine, and where the Prefect UI is."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from reelroute.models.assembly import Settings

REFRESH_SECONDS = 5.0
OUTAGE_NOTE = "**The database is unavailable just now; retrying.** What is shown may be stale."


@dataclass(frozen=True)
class AdminContext:
    """Shared by the pages of one admin app."""

    settings: Settings
    engine: sa.Engine
    prefect_ui_url: str | None


def prefect_ui_url() -> str | None:
    """The Prefect UI this process's Prefect settings point at (PREFECT_UI_URL, else derived
    from PREFECT_API_URL); None when neither is set."""
    from prefect.settings import get_current_settings

    url = get_current_settings().ui_url
    return str(url).rstrip("/") if url else None
