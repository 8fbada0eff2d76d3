"""The providers' health in the API and on the admin's Providers page, and why a waiting item
waits, once a model's breaker is open."""

from __future__ import annotations

from sqlmodel import Session

from reelroute.models.core.enums import FailureClass, InferenceProvider
from reelroute.models.core.tables import utcnow
from reelroute.models.health.breakers import model_breaker, record_outcome
from reelroute.ui.views import providers as view
from tests.models.helpers import image_bytes
from tests.ui.api_client import add, as_admin, new_group, upload

TURBO = InferenceProvider.runway_gen4_turbo


def open_turbo(engine, settings) -> None:
    with Session(engine) as session:
        record_outcome(
            session,
            settings,
            name=model_breaker(TURBO),
            ok=False,
            failure_class=FailureClass.provider_exhausted,
            reason="HTTP_429: the daily limit",
            retry_after=600,
        )
        session.commit()


def test_an_open_model_shows_why_and_its_named_items_say_they_wait(client, engine, app_settings):
    group = new_group(client)
    (photo,) = upload(client, group, ("a.png", image_bytes(), "image/png"))
    answer = add(
        client, group, [{"photo_id": photo["id"], "prompt": "p", "inference_provider": TURBO.value}]
    )
    assert answer.status_code == 200, answer.text
    item_id = answer.json()["data"][0]["id"]
    assert answer.json()["data"][0]["waiting_reason"] is None
    open_turbo(engine, app_settings)
    found = client.get("/api/admin/providers", headers=as_admin()).json()["data"]
    by_name = {entry["name"]: entry for entry in found}
    turbo = by_name[model_breaker(TURBO)]
    assert turbo["state"] == "open" and turbo["label"] == "Gen-4 Turbo"
    assert turbo["failures_hour"] == {"provider_exhausted": 1}
    assert turbo["next_probe_at"] and "HTTP_429" in turbo["reason"]
    assert by_name["model:runway_veo3.1"]["state"] == "closed"
    assert {"pool:gpu", "pool:cloud"} <= set(by_name)
    item = client.get(f"/api/admin/items/{item_id}", headers=as_admin()).json()["data"]
    assert item["waiting_reason"].startswith("Gen-4 Turbo unavailable since ")
    queue = client.get("/api/admin/queue", headers=as_admin()).json()["data"]["items"]
    assert queue[0]["waiting_reason"] == item["waiting_reason"]


def test_the_providers_page_lists_every_model_with_its_state(engine, settings):
    open_turbo(engine, settings)
    html = view.render(view.read(engine), utcnow())
    assert 'data-name="model:runway_gen4_turbo"' in html
    assert html.count('data-state="open"') == 1 and html.count('data-state="closed"') == 5
    assert "provider_exhausted 1" in html and "HTTP_429: the daily limit" in html


def test_the_providers_page_shows_who_leads_each_loop(engine, settings):
    from datetime import timedelta

    from reelroute.models.health.leadership import Leadership
    from reelroute.models.health.loops import beat

    now = utcnow()
    html = view.render_loops(view.read_loops(engine), now)
    assert html.count('data-state="unled"') == 3 and html.count("never") == 3
    leader = Leadership(settings.store.database_url, "dispatcher", holder="host-a:7")
    try:
        assert leader.check()
        with Session(engine) as session:
            beat(session, "reconciler", took_seconds=0.4, ok=False, host="host-a", now=now)
            session.commit()
        later = now + timedelta(seconds=30)
        html = view.render_loops(view.read_loops(engine, later), later)
    finally:
        leader.stop()
    dispatcher = html.split('data-loop="dispatcher"')[1].split("</tr>")[0]
    assert 'data-state="led">host-a:7<' in dispatcher
    reconciler = html.split('data-loop="reconciler"')[1].split("</tr>")[0]
    assert 'data-state="led">host-a:7<' in reconciler  # it runs in the dispatcher
    assert "30 s ago on host-a, failed (0.4 s)" in reconciler
    webhooks = html.split('data-loop="webhooks"')[1].split("</tr>")[0]
    assert 'data-state="unled"' in webhooks and "never" in webhooks
