"""Settings: defaults, environment variables, and errors that name the variable."""

from __future__ import annotations

import pytest

from reelroute.models.assembly import Settings, load_settings
from reelroute.models.core.enums import InferenceProvider
from reelroute.models.core.settings import SettingsError


def test_defaults(monkeypatch):
    for name in ("REELROUTE_DATABASE_URL", "REELROUTE_DEFAULT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.store.database_url == "sqlite:///data/reelroute.db"
    assert settings.routing.default_provider is InferenceProvider.runway_gen4_turbo
    assert (settings.routing.wan_fallback_threshold, settings.items.max_attempts) == (50, 3)


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("REELROUTE_DEFAULT_PROVIDER", "runway_veo3.1")
    monkeypatch.setenv("REELROUTE_WAN_FALLBACK_THRESHOLD", "7")
    monkeypatch.setenv("REELROUTE_ADMIN_TOKEN", "s3cret-admin-0123456789abcdefghij")
    settings = load_settings(_env_file=None)
    assert settings.routing.default_provider is InferenceProvider.runway_veo3_1
    assert settings.routing.wan_fallback_threshold == 7
    assert settings.api.admin_token.get_secret_value() == "s3cret-admin-0123456789abcdefghij"
    assert "s3cret-admin-0123456789abcdefghij" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("REELROUTE_DEFAULT_PROVIDER", "runway_veo3", "REELROUTE_DEFAULT_PROVIDER"),
        ("REELROUTE_LEASE_SECONDS", "1", "REELROUTE_LEASE_SECONDS"),
        ("REELROUTE_MAX_ATTEMPTS", "many", "REELROUTE_MAX_ATTEMPTS"),
        ("REELROUTE_DATABASE_URL", "mysql://x", "REELROUTE_DATABASE_URL"),
        ("REELROUTE_DATABASE_URL", "postgresql://x/y", r"postgresql\+psycopg://"),
    ],
)
def test_invalid_values_fail_with_the_variable_name(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings(_env_file=None)


def test_env_example_lists_every_setting_with_its_default():
    from pathlib import Path

    from reelroute.models.assembly import FLAT
    from reelroute.models.core.settings import ENV_PREFIX

    example = Path(__file__).parents[3] / ".env.example"
    lines = dict(
        line.split("=", 1)
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(lines) == {ENV_PREFIX + name.upper() for name in FLAT}
    settings = load_settings(_env_file=example)  # the example itself is a valid configuration
    assert settings.api.admin_token is None
    assert settings == Settings(_env_file=None)
