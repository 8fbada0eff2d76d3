"""The settings object composed of every room's group, and the registry of every table with
its owner. `settings.py` holds `Settings` and `load_settings`; `registry.py` the migrations'
metadata and the owners the ownership check reads. The top layer of `models`: no room imports
it; the layers above read the settings through it."""

from __future__ import annotations

from reelroute.models.assembly import registry
from reelroute.models.assembly.registry import OWNERS, TABLE_MODULES, metadata
from reelroute.models.assembly.settings import (
    ENV_OF,
    FLAT,
    GROUPS,
    Settings,
    SettingsError,
    get_settings,
    load_settings,
    nested,
    settings_from_environment,
)

__all__ = [
    "ENV_OF",
    "FLAT",
    "GROUPS",
    "OWNERS",
    "TABLE_MODULES",
    "Settings",
    "SettingsError",
    "get_settings",
    "load_settings",
    "metadata",
    "nested",
    "registry",
    "settings_from_environment",
]
