"""Which Provider makes an item: Runway for the Runway providers, Wan for wan_local.

In sandbox mode (REELROUTE_SANDBOX=1) Runway calls go through the real SDK to the bundled
emulator (`reelroute emulator`, or the one `reelroute up` starts) and Wan runs the tiny pipeline.
"""

from __future__ import annotations

from pydantic import SecretStr

from reelroute.models.assembly import Settings
from reelroute.models.core.enums import InferenceProvider
from reelroute.providers.base import Provider

SANDBOX_API_SECRET = "sandbox-key"  # noqa: S105 (the emulator accepts any key; not a secret)


def emulator_url(settings: Settings) -> str:
    """Where sandbox mode expects the Runway emulator (REELROUTE_EMULATOR_PORT on loopback)."""
    return f"http://127.0.0.1:{settings.local.emulator_port}"


def runway_settings(settings: Settings) -> Settings:
    """The settings a Runway provider uses: in sandbox mode, the emulator's address and key."""
    if not settings.sandbox:
        return settings
    return settings.replaced(
        runway_base_url=settings.runway.base_url or emulator_url(settings),
        runway_api_secret=SecretStr(SANDBOX_API_SECRET),
    )


def provider_for(provider: InferenceProvider, settings: Settings) -> Provider:
    """A provider for items of `provider`. Importing this module loads no torch."""
    if provider is InferenceProvider.wan_local:
        if settings.wan.servers:  # a flow run of `reelroute worker --pool gpu`: the warm ones
            from reelroute.providers.wan_process import RemoteWan

            return RemoteWan(settings)
        from reelroute.providers.wan import WanProvider

        return WanProvider(settings)
    from reelroute.providers.runway import RunwayProvider

    return RunwayProvider(runway_settings(settings))
