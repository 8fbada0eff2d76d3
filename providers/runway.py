"""Runway through the official `runwayml` SDK: submit, hand the task id over, poll, download.

Imports neither torch nor diffusers: a Runway flow run must start in about a second.
"""

from __future__ import annotations

import base64
import contextlib
import io
import time
from collections.abc import Callable
from typing import Any

import httpx
import runwayml
from PIL import Image

from reelroute.models.assembly import Settings
from reelroute.models.core.catalogue import info, nearest_duration, ratio_for, requested_seconds
from reelroute.models.core.enums import FailureCode, InferenceProvider
from reelroute.models.core.tasks import MAX_PROMPT_UTF16_UNITS, prompt_units
from reelroute.models.money.limits import ModelLimits, RunwayLimits
from reelroute.providers.base import (
    ConfigurationError,
    GenerationRequest,
    GenerationResult,
    PermanentError,
    ProgressCallback,
    ProviderError,
    TaskCallback,
    TransientError,
)
from reelroute.providers.video import probe_mp4

MAX_DATA_URI_BYTES = 5 * 1024 * 1024
DATA_URI_PREFIX = "data:image/jpeg;base64,"
DOWNLOAD_ATTEMPTS = 3
CREATE_TIMEOUT_SECONDS = 300.0  # a create is never retried: give Runway time to answer it


def image_data_uri(image: bytes) -> str:
    """The photo as a data URI of at most 5 MB: as it is when it fits, else re-encoded as JPEG
    and downscaled until it fits."""
    with Image.open(io.BytesIO(image)) as source:
        kind = (source.format or "").lower()
        picture = source.convert("RGB")
    if kind in {"jpeg", "png", "webp"}:
        uri = f"data:image/{kind};base64," + base64.b64encode(image).decode()
        if len(uri) <= MAX_DATA_URI_BYTES:
            return uri
    while True:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=90)
        uri = DATA_URI_PREFIX + base64.b64encode(buffer.getvalue()).decode()
        if len(uri) <= MAX_DATA_URI_BYTES:
            return uri
        picture = picture.resize((max(1, picture.width * 3 // 4), max(1, picture.height * 3 // 4)))


def translate(error: runwayml.RunwayMLError, *, task_alive: bool = False) -> ProviderError:
    """The SDK's exception as one of ours (after the SDK's own retries)."""
    if isinstance(error, runwayml.BadRequestError | runwayml.UnprocessableEntityError):
        message = _message(error)
        if "credit" in message.lower():  # the balance or the monthly limit: not the item's
            return TransientError(
                f"Runway has not enough credits: {message}; add credits, or the model waits",
                code=FailureCode.CREDITS,
                task_alive=task_alive,
            )
        return PermanentError(f"Runway refused the request: {message}", code=FailureCode.HTTP_400)
    if isinstance(error, runwayml.AuthenticationError | runwayml.PermissionDeniedError):
        return ConfigurationError(
            f"Runway refused the API key ({error.status_code}): set RUNWAYML_API_SECRET "
            "(or REELROUTE_RUNWAY_API_SECRET) to a valid key",
            code=FailureCode.of_http_status(error.status_code),
        )
    if isinstance(error, runwayml.RateLimitError):
        return TransientError(
            "Runway's daily generation limit is reached (429); the model waits for its reset",
            code=FailureCode.HTTP_429,
            task_alive=task_alive,
            retry_after=_retry_after(error),
        )
    if isinstance(error, runwayml.APIStatusError):
        return TransientError(
            f"Runway answered {error.status_code}: {_message(error)}",
            code=FailureCode.of_http_status(error.status_code),
            task_alive=task_alive,
        )
    if isinstance(error, runwayml.APIConnectionError):
        return TransientError(
            f"cannot reach Runway: {error}", code=FailureCode.CONNECTION, task_alive=task_alive
        )
    return TransientError(f"Runway SDK error: {error}", task_alive=task_alive)


def _retry_after(error: runwayml.APIStatusError) -> float | None:
    """Seconds until Runway said to come back (`Retry-After`), if it did."""
    value = error.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _message(error: runwayml.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(error.message)


class RunwayProvider:
    """Gen-4 Turbo and Veo 3.1 image-to-video through Runway's API."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: runwayml.RunwayML | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._client = client
        self._sleep = sleep

    @property
    def client(self) -> runwayml.RunwayML:
        """The SDK client, made from the settings on first use."""
        if self._client is None:
            secret = self.settings.runway.api_secret
            if secret is None:
                raise ConfigurationError(
                    "no Runway API key: set RUNWAYML_API_SECRET (or REELROUTE_RUNWAY_API_SECRET), "
                    "or REELROUTE_SANDBOX=1 to use the bundled emulator",
                    code=FailureCode.RUNWAY_CONFIG,
                )
            self._client = runwayml.RunwayML(
                api_key=secret.get_secret_value(),
                base_url=self.settings.runway.base_url,
                max_retries=self.settings.runway.max_retries,
                timeout=self.settings.runway.timeout_seconds,
            )
        return self._client

    def request_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The arguments of `image_to_video.create` for this request (checked before any call)."""
        entry = info(request.provider)
        if request.provider is InferenceProvider.wan_local:
            raise PermanentError("wan_local items are not made by Runway")
        units = prompt_units(request.prompt)
        if not request.prompt.strip() or units > MAX_PROMPT_UTF16_UNITS:
            raise PermanentError(
                f"the prompt is {units} UTF-16 units long; Runway takes 1 to "
                f"{MAX_PROMPT_UTF16_UNITS}: shorten it"
            )
        try:
            with Image.open(io.BytesIO(request.image)) as image:
                width, height = image.size
            data_uri = image_data_uri(request.image)
        except OSError:
            raise PermanentError("the photo is not a readable image") from None
        body: dict[str, Any] = {
            "model": entry.model,
            "prompt_image": data_uri,
            "prompt_text": request.prompt,
            "ratio": ratio_for(entry, width, height),
            "duration": nearest_duration(
                entry, requested_seconds(request.duration_s, request.frame_num)
            ),
        }
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    def generate(
        self, request: GenerationRequest, *, on_progress: ProgressCallback, on_task: TaskCallback
    ) -> GenerationResult:
        """Submit (or resume) the task, poll it to the end, download and check the video."""
        task_id = request.provider_task_id
        if task_id is None:
            body = self.request_body(request)
            # Runway has no idempotency key: a create that timed out may still have made (and
            # will bill) a task we never hear of. So a create is never retried by the SDK and is
            # given time to answer; anything else is a transient failure of this attempt.
            creator = self.client.with_options(
                max_retries=0,
                timeout=max(self.settings.runway.timeout_seconds, CREATE_TIMEOUT_SECONDS),
            )
            try:
                created = creator.image_to_video.create(**body)
            except runwayml.RunwayMLError as error:
                raise translate(error) from None
            task_id = created.id
            try:
                on_task(task_id)  # stored before anything else can fail: a retry resumes it
            except BaseException:
                self._abandon(task_id)
                raise
        return self._wait(task_id, info(request.provider).model, on_progress)

    def _abandon(self, task_id: str) -> None:
        """A task whose id could not be kept: delete it at Runway (it stops the billing if it
        has not run yet), so that the next attempt's task is the only one paid for."""
        with contextlib.suppress(ProviderError):  # best effort: the id is lost either way
            self.cancel(task_id)

    def _wait(self, task_id: str, model: str, on_progress: ProgressCallback) -> GenerationResult:
        deadline = time.monotonic() + self.settings.runway.task_timeout_seconds
        while True:
            try:
                task = self.client.tasks.retrieve(task_id)
            except runwayml.NotFoundError:
                raise TransientError(
                    f"Runway task {task_id} no longer exists; the next attempt submits a new one",
                    code=FailureCode.TASK_GONE,
                ) from None
            except runwayml.RunwayMLError as error:
                raise translate(error, task_alive=True) from None
            if task.status == "SUCCEEDED":
                on_progress(1.0)
                return self._download(task_id, model, task.cost.credits, task.output)
            if task.status == "FAILED":
                raise _failure(task.failure_code, task.failure, task.cost.credits)
            if task.status == "CANCELLED":
                raise PermanentError(
                    f"Runway task {task_id} was cancelled",
                    code=FailureCode.CANCELLED,
                    cost_credits=task.cost.credits,
                )
            if task.status == "RUNNING":
                on_progress(float(task.progress))
            elif task.status in ("PENDING", "THROTTLED"):
                on_progress(0.0)  # waiting at Runway in submission order, not an error
            else:
                raise PermanentError(
                    f"Runway task {task_id} has the status {task.status!r}, which reelroute does "
                    "not know: the task was left as it is; check it at Runway and upgrade "
                    "reelroute",
                    code=FailureCode.UNKNOWN_STATUS,
                )
            if time.monotonic() > deadline:
                raise TransientError(
                    f"Runway task {task_id} is not done after "
                    f"{self.settings.runway.task_timeout_seconds:.0f} s (REELROUTE_RUNWAY_TASK_"
                    "TIMEOUT_SECONDS); the next attempt keeps waiting for it",
                    code=FailureCode.TIMEOUT,
                    task_alive=True,
                )
            self._sleep(self.settings.runway.poll_seconds)

    def _download(
        self, task_id: str, model: str, credits: int, urls: list[str]
    ) -> GenerationResult:
        """Fetch the output at once (URLs expire in 24-48 h) and check it plays. A failed or
        broken download (expired URL, a connection cut mid-file) is tried again with fresh URLs
        from the task; after DOWNLOAD_ATTEMPTS it is transient, the task kept: the next attempt
        downloads again and pays nothing more."""
        problem = ""
        for attempt in range(DOWNLOAD_ATTEMPTS):
            if attempt:
                urls = self._fresh_urls(task_id, urls)
            try:
                response = httpx.get(
                    urls[0], timeout=self.settings.runway.timeout_seconds, follow_redirects=True
                )
                response.raise_for_status()
                video = response.content
                meta = probe_mp4(video)
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            except PermanentError as error:  # truncated or damaged on the way: fetch it again
                problem = str(error)
                continue
            return GenerationResult(
                video=video,
                model=model,
                cost_credits=credits,
                provider_task_id=task_id,
                frames=meta.frames,
                fps=meta.fps,
                width=meta.width,
                height=meta.height,
            )
        raise TransientError(
            f"cannot download the video of task {task_id} ({DOWNLOAD_ATTEMPTS} tries): {problem}",
            code=FailureCode.DOWNLOAD,
            task_alive=True,
        )

    def _fresh_urls(self, task_id: str, urls: list[str]) -> list[str]:
        """The task's output URLs as Runway gives them now (they expire)."""
        try:
            fresh = self.client.tasks.retrieve(task_id)
        except runwayml.RunwayMLError as error:
            raise translate(error, task_alive=True) from None
        return list(fresh.output) if fresh.status == "SUCCEEDED" else urls

    def limits(self) -> RunwayLimits:
        """Our organisation's limits, today's use and the credit balance
        (`client.organization.retrieve()`), as reelroute keeps them."""
        try:
            answer = self.client.organization.retrieve()
        except runwayml.RunwayMLError as error:
            raise translate(error) from None
        used = {name: usage.daily_generations for name, usage in answer.usage.models.items()}
        return RunwayLimits(
            credit_balance=answer.credit_balance,
            max_monthly_credits=answer.tier.max_monthly_credit_spend,
            models={
                name: ModelLimits(
                    max_concurrent=limits.max_concurrent_generations,
                    max_daily=limits.max_daily_generations,
                    used_today=used.get(name, 0),
                )
                for name, limits in answer.tier.models.items()
            },
        )

    def cancel(self, task_id: str) -> None:
        """Delete the task at Runway: stops a pending or running one (no refund once it ran)."""
        try:
            self.client.tasks.delete(task_id)
        except runwayml.NotFoundError:
            return  # already gone
        except runwayml.RunwayMLError as error:
            raise translate(error, task_alive=True) from None


def _failure(code: str | None, message: str, credits: int) -> ProviderError:
    """A FAILED task: moderation is final, Runway's own trouble may be retried."""
    text = f"Runway failed the task ({code or 'no code'}): {message}"
    family = FailureCode.of_runway_task(code)
    if family in (FailureCode.INTERNAL, FailureCode.ASSET_INVALID):
        return TransientError(text, code=family, cost_credits=credits)
    return PermanentError(text, code=family, cost_credits=credits)
