"""The one settings object of reelroute, composed at the top of `models` from the groups each
room owns (`models/<room>/settings.py`) and the shared ones in `models/core/settings.py`: read
from the environment and `.env`, checked at start.

The settings are grouped by concern (`settings.wan.steps`, `settings.runway.poll_seconds`, …);
each still comes from the environment variable it always had (`REELROUTE_WAN_STEPS`,
`REELROUTE_RUNWAY_POLL_SECONDS`): every field names its variable (`env`), and `GroupedSource`
reads the flat variables into the groups. `load_settings(wan_steps=3)` and
`settings.replaced(wan_steps=3)` take the same flat names. A room of `models` never imports
this module: it is typed by its own config Protocol (the groups it reads), which `Settings`
satisfies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Self

from pydantic import Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource

from reelroute.models.core.settings import (
    ENV_PREFIX,
    ApiSettings,
    Group,
    ItemSettings,
    LocalSettings,
    RunwaySettings,
    SettingsError,
    WanSettings,
    WebhookSettings,
)
from reelroute.models.health.settings import HealthSettings
from reelroute.models.items.settings import DispatchSettings, QualitySettings
from reelroute.models.money.settings import GpuSettings
from reelroute.models.planning.settings import RoutingSettings
from reelroute.models.store.settings import StoreSettings

__all__ = [
    "ENV_OF",
    "FLAT",
    "GROUPS",
    "Settings",
    "SettingsError",
    "get_settings",
    "load_settings",
    "nested",
    "settings_from_environment",
]

GROUPS: dict[str, type[Group]] = {
    "store": StoreSettings,
    "routing": RoutingSettings,
    "items": ItemSettings,
    "api": ApiSettings,
    "webhooks": WebhookSettings,
    "runway": RunwaySettings,
    "wan": WanSettings,
    "dispatch": DispatchSettings,
    "gpu": GpuSettings,
    "health": HealthSettings,
    "quality": QualitySettings,
    "local": LocalSettings,
}


def _env_names(field: FieldInfo) -> list[str]:
    extra = field.json_schema_extra
    assert isinstance(extra, dict), "every setting names its environment variable"
    names = extra["env"]
    assert isinstance(names, list)
    return [str(name) for name in names]


ENV_OF: dict[tuple[str, str], list[str]] = {
    (group, name): _env_names(field)
    for group, model in GROUPS.items()
    for name, field in model.model_fields.items()
}
"""(group, field) -> its environment variables, the first one the main one."""


FLAT: dict[str, tuple[str, str]] = {
    names[0].removeprefix(ENV_PREFIX).lower(): key for key, names in ENV_OF.items()
}
"""A setting's flat name (its variable without the prefix, lower case) -> (group, field)."""


def nested(flat: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """Values by flat name (`wan_steps=3`) as groups (`{"wan": {"steps": 3}}`)."""
    grouped: dict[str, dict[str, object]] = {}
    for name, value in flat.items():
        if name not in FLAT:
            raise SettingsError(f"no setting {ENV_PREFIX}{name.upper()}")
        group, field = FLAT[name]
        grouped.setdefault(group, {})[field] = value
    return grouped


RETIRED = {
    "REELROUTE_WEBHOOK_ALLOW_PRIVATE": "REELROUTE_WEBHOOK_ALLOW_PRIVATE is gone: list the "
    "networks webhooks may reach in REELROUTE_WEBHOOK_ALLOW_NETWORKS (e.g. 127.0.0.0/8)",
}
"""Variables that no longer exist, and what replaced them (a set one stops the start)."""


class GroupedSource(PydanticBaseSettingsSource):
    """The variables of `inner` (the environment, or `.env`) read into the groups."""

    def __init__(self, settings_cls: type[BaseSettings], inner: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: `__call__` reads every group at once."""
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        variables = self.inner.env_vars
        for name, instead in RETIRED.items():
            if variables.get(name if self.inner.case_sensitive else name.lower()):
                raise SettingsError(f"invalid settings:\n  {instead}")
        for (group, field), names in ENV_OF.items():
            for name in names:
                value = variables.get(name if self.inner.case_sensitive else name.lower())
                if value is not None and value != "":  # `REELROUTE_WAN_FPS=` means unset
                    found.setdefault(group, {})[field] = value
                    break
        return found


class Settings(BaseSettings):
    """Every knob of reelroute, by concern; each field says its `REELROUTE_` variable."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    store: StoreSettings = Field(default_factory=StoreSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    items: ItemSettings = Field(default_factory=ItemSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    runway: RunwaySettings = Field(default_factory=RunwaySettings)
    wan: WanSettings = Field(default_factory=WanSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    local: LocalSettings = Field(default_factory=LocalSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the environment, then `.env`, each read into the groups."""
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, EnvSettingsSource)
        return (
            init_settings,
            GroupedSource(settings_cls, env_settings),
            GroupedSource(settings_cls, dotenv_settings),
        )

    @model_validator(mode="after")
    def _key_is_not_a_token(self) -> Self:
        key = self.webhooks.signing_key
        if key is None:
            return self
        for name, token in (
            ("REELROUTE_ADMIN_TOKEN", self.api.admin_token),
            ("REELROUTE_WORKER_TOKEN", self.api.worker_token),
            ("REELROUTE_METRICS_TOKEN", self.api.metrics_token),
        ):
            if token is not None and key.get_secret_value() == token.get_secret_value():
                raise ValueError(
                    f"REELROUTE_WEBHOOK_SIGNING_KEY equals {name}: whoever holds the token "
                    "could read every endpoint's secret; give the key its own value"
                )
        return self

    @property
    def sandbox(self) -> bool | None:
        """Sandbox mode (REELROUTE_SANDBOX): Runway's emulator and the tiny Wan."""
        return self.local.sandbox

    def replaced(self, **flat: object) -> Settings:
        """These settings with some values changed, by flat name (`routing_policy="threshold"`),
        checked as when read."""
        changes = nested(flat)
        groups: dict[str, object] = {}
        for group, values in changes.items():
            current: Group = getattr(self, group)
            try:
                groups[group] = type(current).model_validate({**current.model_dump(), **values})
            except ValidationError as error:
                raise SettingsError(_problems(error, group)) from None
        return self.model_copy(update=groups)


def load_settings(**overrides: object) -> Settings:
    """Read the settings; values given here (by flat name: `lease_seconds=10`) win over the
    environment. An invalid value raises SettingsError naming the variable. `_env_file=None`
    reads no `.env`."""
    options = {name: overrides.pop(name) for name in list(overrides) if name.startswith("_")}
    try:
        return Settings(**options, **nested(overrides))  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(_problems(error)) from None


def _problems(error: ValidationError, group: str | None = None) -> str:
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if group is not None:
            loc = [group, *loc]
        names = ENV_OF.get((loc[0], loc[1])) if len(loc) >= 2 else None
        if names is None:  # a rule over several settings: its message names them
            problems.append(item["msg"].removeprefix("Value error, "))
            continue
        problems.append(f"{names[0]}: {item['msg']}{_shown(names[0], item.get('input'))}")
    return "invalid settings:\n  " + "\n  ".join(problems)


SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")


def _shown(name: str, value: object) -> str:
    """What an error may show of a rejected value: nothing of a secret, a URL without its
    password."""
    if any(word in name for word in SECRET_WORDS) or isinstance(value, dict):
        return ""
    text = str(value)
    if "URL" in name:
        text = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", text)
    return f" (got {text!r})"


def settings_from_environment(environment: Mapping[str, str]) -> Settings:
    """The settings a process started with `environment` would read (its REELROUTE_ variables
    only, no `.env`): for launchers that build a child's environment and need the same values."""
    return load_settings(
        _env_file=None,
        **{
            name.removeprefix(ENV_PREFIX).lower(): value
            for name, value in environment.items()
            if name.startswith(ENV_PREFIX)
            and name.removeprefix(ENV_PREFIX).lower() in FLAT
            and value != ""
        },
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
