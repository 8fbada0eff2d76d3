"""Runway through the real runwayml SDK against the emulator on loopback."""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid

import pytest
import runwayml

from reelroute.models.core.enums import FailureCode, InferenceProvider
from reelroute.providers.base import (
    ConfigurationError,
    GenerationRequest,
    PermanentError,
    TransientError,
)
from reelroute.providers.runway import RunwayProvider, image_data_uri, translate
from reelroute.providers.video import probe_mp4
from tests.providers.conftest import photo

TURBO, VEO = InferenceProvider.runway_gen4_turbo, InferenceProvider.runway_veo3_1


def request(provider=TURBO, **changes) -> GenerationRequest:
    fields = dict(item_id=uuid.uuid4(), provider=provider, image=photo(), prompt="waves roll in")
    fields.update(changes)
    return GenerationRequest(**fields)


class Recorder:
    def __init__(self):
        self.progress: list[float] = []
        self.tasks: list[str] = []

    def run(self, provider: RunwayProvider, req: GenerationRequest):
        return provider.generate(req, on_progress=self.progress.append, on_task=self.tasks.append)


@pytest.mark.parametrize(
    ("provider", "size", "changes", "model", "ratio", "duration"),
    [
        (TURBO, (64, 48), {}, "gen4_turbo", "1104:832", 5),
        (TURBO, (48, 64), {"duration_s": 8}, "gen4_turbo", "832:1104", 8),
        (TURBO, (64, 64), {"frame_num": 121}, "gen4_turbo", "960:960", 5),
        (VEO, (64, 36), {}, "veo3.1", "1280:720", 6),
        (VEO, (36, 64), {"duration_s": 8, "seed": 42}, "veo3.1", "720:1280", 8),
        (VEO, (64, 48), {"duration_s": 3}, "veo3.1", "1280:720", 4),
    ],
)
def test_each_model_gets_its_model_duration_ratio_and_image(
    runway, emulator, provider, size, changes, model, ratio, duration
):
    image = photo(*size)
    recorder = Recorder()
    result = recorder.run(runway, request(provider, image=image, **changes))
    (sent,) = emulator.submissions()
    assert (sent["model"], sent["ratio"], sent["duration"]) == (model, ratio, duration)
    assert sent["promptText"] == "waves roll in"
    assert sent["promptImage"] == "data:image/png;base64," + base64.b64encode(image).decode()
    assert sent.get("seed") == changes.get("seed")
    assert result.model == model and result.provider_task_id == recorder.tasks[0]
    assert result.cost_credits == {"gen4_turbo": 5, "veo3.1": 40}[model] * duration
    auth = next(r for r in emulator.requests if r.method == "POST").headers
    assert auth["authorization"] == "Bearer test-key-123"
    assert auth["x-runway-version"] == "2024-11-06"


def test_output_is_downloaded_and_checked(runway, emulator):
    result = Recorder().run(runway, request(VEO, image=photo(64, 36), duration_s=4))
    info = probe_mp4(result.video)
    assert (info.width, info.height) == (96, 54)
    assert info.frames == result.frames > 0 and result.fps == info.fps
    assert info.frames / info.fps == pytest.approx(4, abs=0.5)


def test_task_id_is_handed_over_before_polling(runway, emulator):
    seen: list[str] = []

    def on_progress(_fraction: float) -> None:
        seen.append("progress" if seen else "progress-before-task")

    def on_task(task_id: str) -> None:
        seen.append("task")
        assert task_id in emulator.tasks

    runway.generate(request(), on_progress=on_progress, on_task=on_task)
    assert seen[0] == "task"


def test_throttled_tasks_wait_then_succeed(runway, emulator):
    emulator.script.concurrency = 1
    emulator.script.latency_s = 0.4
    first = runway.client.image_to_video.create(**runway.request_body(request()))
    recorder = Recorder()
    result = recorder.run(runway, request())
    statuses = [r for r in emulator.requests if r.method == "GET"]
    assert result.video and len(statuses) > 3
    task = emulator.tasks[recorder.tasks[0]]
    assert task.start >= emulator.tasks[first.id].end  # it waited for the first one's slot
    assert recorder.progress[0] == 0.0 and recorder.progress[-1] == 1.0
    assert any(0 < p < 1 for p in recorder.progress)


def test_throttled_is_reported_while_waiting(runway, emulator):
    emulator.script.concurrency = 1
    emulator.script.latency_s = 5
    runway.client.image_to_video.create(**runway.request_body(request()))
    second = runway.client.image_to_video.create(**runway.request_body(request()))
    assert runway.client.tasks.retrieve(second.id).status == "THROTTLED"


def test_moderation_failure_is_permanent(runway, emulator):
    emulator.script.fail_next.append(("SAFETY.INPUT.TEXT", "The prompt was flagged"))
    with pytest.raises(PermanentError) as error:
        Recorder().run(runway, request())
    assert error.value.code is FailureCode.SAFETY_INPUT and "flagged" in str(error.value)
    assert "SAFETY.INPUT.TEXT" in str(error.value)  # the full code, for whoever reads it


def test_an_unknown_task_status_fails_at_once_instead_of_waiting(runway, emulator):
    emulator.script.unknown_status = "QUEUED"
    recorder = Recorder()
    with pytest.raises(PermanentError) as error:
        recorder.run(runway, request())
    assert error.value.code == "UNKNOWN_STATUS" and "'QUEUED'" in str(error.value)
    assert emulator.count("GET", "/v1/tasks/") == 1  # no polling until the timeout
    assert recorder.tasks == list(emulator.tasks)  # the task id was kept before it failed


def test_a_lost_connection_is_transient_and_keeps_the_task(runway_settings, emulator):
    submitted = Recorder()
    provider = RunwayProvider(runway_settings)
    emulator.script.latency_s = 30
    task = provider.client.image_to_video.create(**provider.request_body(request()))
    gone = RunwayProvider(runway_settings.replaced(runway_base_url="http://127.0.0.1:1"))
    with pytest.raises(TransientError) as error:
        gone.generate(
            request(provider_task_id=task.id),
            on_progress=submitted.progress.append,
            on_task=submitted.tasks.append,
        )
    assert error.value.code == "CONNECTION" and error.value.task_alive


@pytest.mark.parametrize("code", ["INTERNAL.BAD_OUTPUT.CODE01", "ASSET.INVALID"])
def test_runway_internal_failures_are_transient(runway, emulator, code):
    emulator.script.fail_next.append((code, "try again"))
    with pytest.raises(TransientError) as error:
        Recorder().run(runway, request())
    assert error.value.code is FailureCode.of_runway_task(code) and error.value.cost_credits == 25
    assert error.value.code in (FailureCode.INTERNAL, FailureCode.ASSET_INVALID)
    assert not error.value.task_alive


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_transient(runway, emulator, status):
    emulator.script.http_errors.append(status)
    with pytest.raises(TransientError) as error:
        Recorder().run(runway, request())
    assert error.value.code is FailureCode.of_http_status(status)
    assert error.value.code in (FailureCode.HTTP_429, FailureCode.HTTP_5XX)
    assert emulator.tasks == {}


def test_the_sdk_retries_a_server_error_while_polling_by_itself(runway_settings, emulator):
    settings = runway_settings.replaced(runway_max_retries=2)
    provider = RunwayProvider(settings)

    def created(task_id: str) -> None:
        emulator.script.http_errors.append(503)  # the first poll fails once

    result = provider.generate(request(), on_progress=lambda _: None, on_task=created)
    assert result.video and emulator.count("POST") == 1


def test_a_create_is_never_retried_it_could_pay_twice(runway_settings, emulator):
    """Runway has no idempotency key: a create that failed may still have made a task."""
    settings = runway_settings.replaced(runway_max_retries=2)
    emulator.script.http_errors.append(503)
    with pytest.raises(TransientError) as error:
        Recorder().run(RunwayProvider(settings), request())
    assert error.value.code is FailureCode.HTTP_5XX and emulator.count("POST") == 1


def test_a_slow_create_is_waited_for_not_timed_out(runway_settings, emulator):
    emulator.script.hang_next, emulator.script.hang_s = 1, 1.5
    impatient = RunwayProvider(runway_settings.replaced(runway_timeout_seconds=0.5))
    assert Recorder().run(impatient, request()).video
    assert len(emulator.tasks) == 1 and emulator.count("POST") == 1


def test_a_task_whose_id_cannot_be_kept_is_deleted_at_runway(runway, emulator):
    def cannot_keep(task_id: str) -> None:
        raise RuntimeError("the database is gone")

    with pytest.raises(RuntimeError):
        runway.generate(request(), on_progress=lambda _: None, on_task=cannot_keep)
    (task,) = emulator.tasks.values()
    assert task.cancelled  # its billing stops; the next attempt's task is the one paid for


def test_an_error_while_polling_keeps_the_task_for_the_next_attempt(runway, emulator):
    emulator.script.latency_s = 1.0
    recorder = Recorder()
    emulator.script.http_errors.extend([])
    original = runway.client.tasks.retrieve

    def flaky(task_id, **kwargs):
        emulator.script.http_errors.append(502)
        return original(task_id, **kwargs)

    runway.client.tasks.retrieve = flaky  # the next GET answers 502
    with pytest.raises(TransientError) as error:
        recorder.run(runway, request())
    assert error.value.task_alive and recorder.tasks


def test_a_resumed_task_is_not_submitted_again(runway, emulator):
    emulator.script.latency_s = 0.5
    created = runway.client.image_to_video.create(**runway.request_body(request()))
    recorder = Recorder()
    result = recorder.run(runway, request(provider_task_id=created.id))
    assert emulator.count("POST") == 1  # paid once
    assert recorder.tasks == [] and result.provider_task_id == created.id


def test_a_vanished_task_is_transient_and_forgotten(runway, emulator):
    with pytest.raises(TransientError) as error:
        Recorder().run(runway, request(provider_task_id=str(uuid.uuid4())))
    assert error.value.code == "TASK_GONE" and not error.value.task_alive


def test_a_too_long_prompt_never_reaches_the_server(runway, emulator):
    with pytest.raises(PermanentError, match="1001 UTF-16 units"):
        Recorder().run(runway, request(prompt="a" * 1001))
    with pytest.raises(PermanentError, match="1002 UTF-16 units"):
        Recorder().run(runway, request(prompt="😀" * 501))  # 501 characters, 1002 units
    assert emulator.requests == []


def test_cancel_deletes_the_task(runway, emulator):
    emulator.script.latency_s = 10
    created = runway.client.image_to_video.create(**runway.request_body(request()))
    runway.cancel(created.id)
    assert emulator.count("DELETE") == 1
    assert runway.client.tasks.retrieve(created.id).status == "CANCELLED"
    runway.cancel(str(uuid.uuid4()))  # an unknown task is already gone: no error
    with pytest.raises(PermanentError, match="cancelled"):
        Recorder().run(runway, request(provider_task_id=created.id))


def test_expired_output_urls_are_refreshed_then_given_up(runway, emulator):
    emulator.script.output_ttl_s = 0.0
    with pytest.raises(TransientError) as error:
        Recorder().run(runway, request())
    assert error.value.code == "DOWNLOAD" and error.value.task_alive
    gets = [r.path for r in emulator.requests if r.path.startswith("/outputs/")]
    assert len(gets) == 3 and len(set(gets)) == 3  # a fresh URL each time


def test_a_wrong_key_is_a_configuration_error(runway_settings, emulator):
    emulator.script.api_keys = {"the-real-key"}
    with pytest.raises(ConfigurationError, match="RUNWAYML_API_SECRET") as error:
        Recorder().run(RunwayProvider(runway_settings), request())
    assert error.value.code == "HTTP_401" and "test-key-123" not in str(error.value)


def test_a_missing_key_is_a_configuration_error(runway_settings):
    settings = runway_settings.replaced(runway_api_secret=None)
    with pytest.raises(ConfigurationError, match="RUNWAYML_API_SECRET"):
        Recorder().run(RunwayProvider(settings), request())


def test_bad_requests_are_permanent_with_runways_message(runway, emulator):
    with pytest.raises(runwayml.BadRequestError) as raw:
        runway.client.image_to_video.create(
            model="gen4_turbo", prompt_image=image_data_uri(photo()), ratio="1920:1080"
        )
    error = translate(raw.value)
    assert isinstance(error, PermanentError) and "Invalid ratio '1920:1080'" in str(error)


def test_large_photos_are_reencoded_under_five_megabytes():
    import io

    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(1).integers(0, 255, (1800, 1800, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 5 * 1024 * 1024
    uri = image_data_uri(buffer.getvalue())
    assert uri.startswith("data:image/jpeg;base64,") and len(uri) <= 5 * 1024 * 1024


def test_importing_the_runway_provider_loads_no_torch_or_diffusers(tmp_path):
    code = (
        "import sys, reelroute.providers.runway, reelroute.providers.emulator, "
        "reelroute.models.core.catalogue, reelroute.providers.registry, reelroute.flows.generate; "
        "print(sorted({'torch', 'diffusers', 'gradio'} & set(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert output.strip() == "[]"


def test_a_download_cut_off_half_way_is_fetched_again(runway, emulator):
    emulator.script.truncate_next = 2
    result = Recorder().run(runway, request())
    assert probe_mp4(result.video).frames > 0
    assert emulator.script.truncate_next == 0


def test_downloads_that_keep_breaking_are_transient_with_the_task_kept(runway, emulator):
    emulator.script.truncate_next = 3
    with pytest.raises(TransientError) as error:
        Recorder().run(runway, request())
    assert error.value.code == "DOWNLOAD" and error.value.task_alive
    assert "3 tries" in str(error.value)


def test_a_hung_poll_times_out_as_transient_with_the_task_kept(runway_settings, emulator):
    impatient = RunwayProvider(runway_settings.replaced(runway_timeout_seconds=0.5))

    def created(task_id: str) -> None:
        emulator.script.hang_next, emulator.script.hang_s = 1, 3.0  # the first poll hangs

    with pytest.raises(TransientError) as error:
        impatient.generate(request(), on_progress=lambda _: None, on_task=created)
    assert error.value.code == "CONNECTION" and error.value.task_alive
    assert Recorder().run(impatient, request()).video  # the next request is answered


def test_limits_read_the_organisation_through_the_sdk(runway, emulator):
    emulator.script.model_concurrency = {"gen4_turbo": 3}
    emulator.script.daily_limits = {"veo3.1": 2}
    emulator.script.credit_balance = 5_000
    result = runway.generate(
        request(), on_progress=lambda _: None, on_task=lambda _: None
    )  # one Gen-4 Turbo task today
    limits = runway.limits()
    assert limits.credit_balance == 5_000 - result.cost_credits
    assert limits.max_monthly_credits == 10_000_000
    assert limits.model("gen4_turbo").max_concurrent == 3
    assert limits.model("gen4_turbo").used_today == 1
    veo = limits.model("veo3.1")
    assert (veo.max_daily, veo.used_today, veo.daily_left) == (2, 0, 2)
    assert {"gen4.5", "veo3.1_fast"} <= set(limits.models)


def test_limits_that_cannot_be_read_raise_a_provider_error(runway, emulator):
    emulator.script.http_errors.append(503)
    with pytest.raises(TransientError):
        runway.limits()


def test_the_emulator_gets_an_upright_photo_without_metadata(runway, emulator, settings):
    """A portrait phone photo (raw pixels landscape, Orientation 6, GPS, maker note, XMP), as a
    flow run hands it over (`upright_bytes` of the stored copy): Runway is asked for a portrait
    video, and no byte of the photo's metadata reaches it."""
    import base64

    from reelroute.models.intake.photos import upright_bytes
    from tests.models.intake.test_photo_corpus import MARKER, assert_upright, phone_photo

    image = upright_bytes(phone_photo(6, 360, 640), settings.api.photo_max_side)
    Recorder().run(runway, request(image=image))
    (body,) = emulator.submissions()
    assert body["ratio"] == "720:1280"
    sent = base64.b64decode(body["promptImage"].split(",", 1)[1])
    assert_upright(sent, 360, 640)
    assert MARKER.decode() not in str(emulator.requests)
