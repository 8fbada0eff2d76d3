"""Schema-driven fuzzing of the REST API (schemathesis + hypothesis): no input answers 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from reelroute.models.assembly import load_settings
from reelroute.models.store.migrate import upgrade
from reelroute.ui.app import create_app

WORKER_TOKEN, ADMIN_TOKEN = "fuzz-worker-" + "w" * 26, "fuzz-admin-" + "a" * 26
TOKENS = {
    "/api/worker": WORKER_TOKEN,
    "/api/admin": ADMIN_TOKEN,
}


def test_no_generated_input_makes_a_500(tmp_path):
    url = f"sqlite:///{tmp_path}/fuzz.db"
    upgrade(url)
    app = create_app(
        load_settings(
            _env_file=None,
            database_url=url,
            storage_url=str(tmp_path / "storage"),
            admin_token=ADMIN_TOKEN,
            worker_token=WORKER_TOKEN,
        )
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 32  # with review, redo and acceptance statistics, A/B pairs
    # The event stream never ends by design: tests/ui/test_events.py reads it from a real server.
    operations = [op for op in operations if op.path != "/api/admin/events"]
    seen: list[tuple[str, str, int]] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def call(case: schemathesis.Case) -> None:
            token = next(v for k, v in TOKENS.items() if case.path.startswith(k))
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            seen.append((case.method, case.path, response.status_code))
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            assert ADMIN_TOKEN not in response.text and WORKER_TOKEN not in response.text

        call()
    app.state.engine.dispose()
    assert len(seen) > 100
