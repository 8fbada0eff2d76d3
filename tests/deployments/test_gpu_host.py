"""A GPU host's choices: which GPUs, each pipeline process's environment."""

from __future__ import annotations

import pytest

from reelroute.deployments.gpu_host import detect_gpus, parse_gpus, server_env


@pytest.mark.parametrize(
    ("text", "gpus"),
    [
        ("0", ["0"]),
        ("0,1, 3", ["0", "1", "3"]),
        ("cpu,cpu", ["cpu:0", "cpu:1"]),
        ("cpu:0,cpu:1", ["cpu:0", "cpu:1"]),
    ],
)
def test_gpus_are_read_from_the_option(text, gpus):
    assert parse_gpus(text) == gpus


@pytest.mark.parametrize(
    ("text", "problem"),
    [("0,0", "names a GPU twice"), ("a100", "not a GPU number"), (" , ", "at least one")],
)
def test_a_bad_gpu_list_says_what_to_write(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_gpus(text)


def test_without_the_option_the_visible_cuda_devices_are_used(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert detect_gpus() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == ["cpu:0"]


def test_each_pipeline_process_sees_its_own_gpu_only():
    base = {"PATH": "/bin", "REELROUTE_WAN_SERVERS": "/tmp/a.sock"}
    assert server_env(base, "3")["CUDA_VISIBLE_DEVICES"] == "3"
    cpu = server_env(base, "cpu:1")
    assert (cpu["CUDA_VISIBLE_DEVICES"], cpu["REELROUTE_WAN_DEVICE"]) == ("", "cpu")
    assert "REELROUTE_WAN_SERVERS" not in cpu  # a pipeline process is no client


def test_a_host_whose_breaker_opens_stops_taking_items_until_its_probe(db_url, settings):
    """The host's worker is paused while its breaker is open (the host leaves Wan's lanes),
    and takes items again when a probe is due; the next outcome is the probe's."""
    import sys
    from datetime import timedelta

    from sqlmodel import Session

    from reelroute.deployments.gpu_host import BREAKER_EVERY, Registry
    from reelroute.deployments.launcher import Services
    from reelroute.models.core.enums import BreakerState, FailureClass
    from reelroute.models.core.tables import utcnow
    from reelroute.models.health.breakers import host_breaker, record_outcome, record_success
    from reelroute.models.health.tables import Breaker
    from reelroute.models.planning.hosts import live_hosts, report_host
    from reelroute.models.store.db import make_engine

    settings = settings.replaced(database_url=db_url, breaker_cooldown_seconds=2)
    engine = make_engine(db_url)
    services = Services()
    services.start("worker", [sys.executable, "-c", "import time; time.sleep(600)"], {}, None)
    registry = Registry(settings, "gpu-a", slots=1)
    try:
        with Session(engine) as session:
            report_host(session, name="gpu-a", gpu_class="cpu", preset="full@1", slots=1)
            session.commit()
        clock = 1000.0
        assert registry.follow_breaker(services, now=clock)  # closed: taking items
        with Session(engine) as session:
            record_outcome(
                session, settings, name=host_breaker("gpu-a"), ok=False,
                failure_class=FailureClass.provider_config, reason="WAN_CONFIG: bad weights",
            )  # fmt: skip
            session.commit()
        clock += BREAKER_EVERY
        assert not registry.follow_breaker(services, now=clock)
        (worker,) = services.children
        assert worker.paused and worker.process.wait(timeout=10) is not None
        services.supervise()
        assert worker.process.poll() is not None  # not restarted while paused
        with Session(engine) as session:
            assert live_hosts(session) == []  # out of Wan's lanes
            breaker = session.get(Breaker, host_breaker("gpu-a"))
            assert breaker is not None
            breaker.next_probe_at = utcnow() - timedelta(seconds=1)  # the cooldown is over
            session.add(breaker)
            session.commit()
        clock += BREAKER_EVERY
        assert registry.follow_breaker(services, now=clock)
        assert not worker.paused and worker.process.poll() is None
        with Session(engine) as session:
            probing = session.get(Breaker, host_breaker("gpu-a"))
            assert probing is not None and probing.state is BreakerState.half_open
            record_success(session, name=host_breaker("gpu-a"))
            session.commit()
            closed = session.get(Breaker, host_breaker("gpu-a"), populate_existing=True)
            assert closed is not None and closed.state is BreakerState.closed
    finally:
        services.stop(grace_seconds=1)
        registry.forget()  # as the host does when it stops: its row goes, its engine closes
        engine.dispose()
