"""The settings object composed of every room's group, and the registry of every table with
its owner. `settings.py` holds `Settings` and `load_settings`; `registry.py` the migrations'
metadata and the owners the ownership check reads. The top layer of `models`: no room imports
it; the layers above read the settings through it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelroute.models.core.lazy import load

if TYPE_CHECKING:
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

_WHERE = {
    "ENV_OF": "reelroute.models.assembly.settings",
    "FLAT": "reelroute.models.assembly.settings",
    "GROUPS": "reelroute.models.assembly.settings",
    "OWNERS": "reelroute.models.assembly.registry",
    "Settings": "reelroute.models.assembly.settings",
    "SettingsError": "reelroute.models.assembly.settings",
    "TABLE_MODULES": "reelroute.models.assembly.registry",
    "get_settings": "reelroute.models.assembly.settings",
    "load_settings": "reelroute.models.assembly.settings",
    "metadata": "reelroute.models.assembly.registry",
    "nested": "reelroute.models.assembly.settings",
    "registry": "reelroute.models.assembly.registry",
    "settings_from_environment": "reelroute.models.assembly.settings",
}
"""Each public name's module, imported when the name is first used."""


def __getattr__(name: str) -> object:
    """A public name, loaded on first use (models.core.lazy)."""
    return load(__name__, _WHERE, name)
