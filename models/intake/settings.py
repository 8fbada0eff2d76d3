"""What the intake room reads of the settings (it owns no group of its own)."""

from __future__ import annotations

from typing import Protocol

from reelroute.models.planning.settings import PlanningConfig
from reelroute.models.store.settings import StoreSettings


class IntakeConfig(PlanningConfig, Protocol):
    """What `intake` reads of the settings, and what it hands to the rooms below."""

    @property
    def store(self) -> StoreSettings: ...
