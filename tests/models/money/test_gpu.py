"""GPU prices (REELROUTE_GPU_HOUR_COST, REELROUTE_GPU_BILLING) and their arithmetic."""

from __future__ import annotations

import pytest

from reelroute.models.assembly import load_settings
from reelroute.models.core.settings import SettingsError
from reelroute.models.money.gpu import GpuPrices
from reelroute.models.money.settings import parse_gpu_prices


@pytest.mark.parametrize(
    ("text", "prices"),
    [
        ("0", {"*": 0.0}),
        ("2.5", {"*": 2.5}),
        ("h100=2.10,h200=3.20", {"h100": 2.1, "h200": 3.2}),
        ("H100=2.10, *=1.80", {"h100": 2.1, "*": 1.8}),
        ("nvidia h100 80gb hbm3=2.0", {"nvidia h100 80gb hbm3": 2.0}),
    ],
)
def test_prices_are_read_per_class(text, prices):
    assert parse_gpu_prices(text) == prices


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("h100=x", "'h100=x' is not a price"),
        ("h100=-1", "a price of 0 or more"),
        ("h100=nan", "a price of 0 or more"),
        ("h100=1,H100=2", "'h100' is priced twice"),
        ("=2", "a class and a price"),
    ],
)
def test_a_bad_price_is_refused_with_how_to_write_it(text, words):
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, gpu_hour_cost=text)
    assert "REELROUTE_GPU_HOUR_COST" in str(refused.value)
    assert words in str(refused.value)
    assert "h100=2.10,h200=3.20" in str(refused.value)


def test_a_billing_that_does_not_exist_is_refused():
    with pytest.raises(SettingsError, match="REELROUTE_GPU_BILLING"):
        load_settings(_env_file=None, gpu_billing="hourly")


def test_a_class_takes_its_own_price_then_the_longest_key_it_names_then_the_rest():
    prices = GpuPrices({"h100": 2.1, "h100 nvl": 2.6, "h200": 3.2, "*": 1.0})
    assert prices.hour_cost("NVIDIA H100 80GB HBM3") == 2.1
    assert prices.hour_cost("NVIDIA H100 NVL") == 2.6
    assert prices.hour_cost("NVIDIA H200") == 3.2
    assert prices.hour_cost("NVIDIA L40S") == 1.0
    assert prices.hour_cost(None) == 1.0
    assert GpuPrices({"h100": 2.1}).hour_cost("cpu") == 0.0


def test_gpu_seconds_cost_their_share_of_the_hour():
    prices = GpuPrices({"*": 2.5}, per_second_billing=True)
    assert prices.dollars(3600, "h100") == pytest.approx(2.5)
    assert prices.dollars(130, "h100") == pytest.approx(130 * 2.5 / 3600)  # about $0.09
    assert prices.dollars(-5, "h100") == 0.0
    # per-second billing: a second adds its price (in credits, 1 credit = $0.01)
    assert prices.marginal_credits_per_second("h100") == pytest.approx(250 / 3600)


def test_always_on_hosts_add_nothing_per_video():
    prices = GpuPrices({"*": 2.5}, per_second_billing=False)
    assert prices.marginal_credits_per_second("h100") == 0.0
    assert prices.dollars(3600, "h100") == pytest.approx(2.5)  # the share the video used


def test_the_settings_give_the_prices_and_the_billing():
    settings = load_settings(
        _env_file=None, gpu_hour_cost="h100=2.10,*=1", gpu_billing="per-second"
    )
    prices = GpuPrices.of(settings)
    assert prices.per_second_billing and prices.hour_cost("NVIDIA H100") == 2.1
    assert GpuPrices.of(load_settings(_env_file=None)).free
