"""The flow run of one item: claim it, make its video with its provider, store it, complete it.

Importing this module loads no torch, diffusers or gradio: a Runway run starts in about a second.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run

from reelroute.flows.backoff import OUTAGES, Backoff
from reelroute.flows.lease import LeaseKeeper, Throttle
from reelroute.flows.quality import check_and_decide, made_by
from reelroute.models.assembly import Settings, get_settings
from reelroute.models.core import (
    POOL_OF,
    DatabaseUnavailable,
    FailureCode,
    InferenceProvider,
    Photo,
    StaleAttempt,
    attach_json,
    flow_run_worker_id,
    log_context,
)
from reelroute.models.intake import upright_bytes
from reelroute.models.items import (
    Claim,
    claim_item,
    complete_with_video,
    fail_item,
    run_started,
    set_provider_task,
)
from reelroute.models.store import Storage, make_engine, session_scope
from reelroute.providers.base import (
    GenerationRequest,
    GenerationResult,
    PermanentError,
    ProviderError,
    TransientError,
)
from reelroute.providers.registry import provider_for

log = logging.getLogger(__name__)
T = TypeVar("T")

# The progress artifact is written at most this often: every write is a call to the Prefect
# server, and a Runway task takes minutes, a Wan video tens of minutes.
PROGRESS_EVERY_SECONDS = 10.0


def shown(show: Callable[[], T]) -> T | None:
    """Run `show`, which writes an artifact to Prefect: a picture of the work, not the work. If
    Prefect cannot take it now (restarting, unreachable), the video goes on without it."""
    try:
        return show()
    except OUTAGES as error:
        log.warning("could not update an artifact in Prefect: %s", error)
        return None


def worker_id(settings: Settings) -> str:
    """Who holds the item: this flow run (the reconciler matches it against Prefect's state),
    on this GPU host (REELROUTE_WAN_HOST, set by `reelroute worker --pool gpu`) or machine."""
    run_id = flow_run.get_id()
    host = settings.wan.host or socket.gethostname()
    return flow_run_worker_id(uuid.UUID(run_id) if run_id else uuid.uuid4(), host)


def run_name() -> str:
    """`<provider>-<item id>-a<attempt>`, the flow run's name in the Prefect UI."""
    parameters = flow_run.get_parameters()
    return f"{parameters['provider']}-{str(parameters['item_id'])[:8]}-a{parameters['attempt']}"


class Outcome(StrEnum):
    """How a generate-video run ended, when it ended without an error."""

    completed = "completed"
    """It made the video and completed the item."""
    skipped = "skipped"
    """The item was no longer this attempt's to claim (taken, cancelled, moved, finished)."""
    lost = "lost"
    """It claimed the item, then lost it (cancelled, or taken over after its lease ran out)."""
    held = "held"
    """It made the video and held it for a person (a failed check, or its group reviews it)."""
    escalated = "escalated"
    """Its video failed a check and the item is to be made again on the group's next option."""


@dataclass(frozen=True)
class RunResult:
    """What a generate-video run returns (shown in the Prefect UI)."""

    outcome: Outcome
    output_path: str | None = None


@flow(name="generate-video", flow_run_name=run_name, persist_result=False, log_prints=False)
def generate_video(item_id: str, attempt: int, provider: str = "", group: str = "") -> RunResult:
    """Make the video of one item as attempt `attempt`; ends cleanly without touching the item
    when it is no longer claimable. `provider` is the provider the run was made for: an item
    moved to another provider while it waited is no longer this run's; `group` is a label for
    the Prefect UI."""
    settings = get_settings()
    attach_json(settings, "reelroute", "prefect.flow_runs")
    engine = make_engine(settings.store.database_url)
    context = log_context(
        item_id=item_id,
        attempt=attempt,
        provider=provider or None,
        flow_run_id=flow_run.get_id(),
        worker_id=worker_id(settings),
    )
    try:
        with context:
            return _generate(engine, settings, uuid.UUID(item_id), attempt, _provider(provider))
    finally:
        engine.dispose()


def _provider(label: str) -> InferenceProvider | None:
    """The provider the run was made for (runs made before the label was a fence: None)."""
    try:
        return InferenceProvider(label) if label else None
    except ValueError:
        return None


def _generate(
    engine: sa.Engine,
    settings: Settings,
    item_id: uuid.UUID,
    attempt: int,
    provider: InferenceProvider | None = None,
) -> RunResult:
    logger = get_run_logger()
    with session_scope(engine) as session:
        claim = claim_item(
            session,
            item_id=item_id,
            attempt=attempt,
            worker_id=worker_id(settings),
            settings=settings,
            provider=provider,
        )
        if claim is not None:  # this run started: it ends a streak of runs that never did
            run_started(session, pool=POOL_OF[claim.inference_provider], item_id=item_id)
    if claim is None:
        logger.info("item %s is no longer claimable by attempt %s: nothing to do", item_id, attempt)
        return RunResult(Outcome.skipped)
    logger.info(
        "claimed item %s, attempt %s, provider %s", item_id, attempt, claim.inference_provider.value
    )
    progress_artifact = shown(
        lambda: cast(
            uuid.UUID,
            create_progress_artifact(
                progress=0.0, key=f"progress-{item_id}", description="Video generation progress"
            ),
        )
    )

    def show_progress(fraction: float) -> None:
        if progress_artifact is not None:
            shown(
                lambda: update_progress_artifact(
                    artifact_id=progress_artifact, progress=round(fraction * 100, 1)
                )
            )

    progress = Throttle(show_progress, seconds=PROGRESS_EVERY_SECONDS, initial=0.0)
    keeper = LeaseKeeper(
        engine,
        item_id=item_id,
        attempt=attempt,
        worker_id=claim.worker_id,
        lease_seconds=settings.items.lease_seconds,
        on_progress=progress,
    )
    try:
        with keeper:  # the lease is kept while the video is made and checked
            result, photo = _make_video(engine, settings, claim, keeper)
            checked = check_and_decide(engine, settings, claim, result, photo)
            if checked.escalated:
                logger.info("item %s: made again elsewhere (%s)", item_id, checked.reason)
                return RunResult(Outcome.escalated)
            review_reason = checked.review_reason
    except StaleAttempt:
        logger.warning(
            "attempt %s lost item %s (cancelled or taken over): stopping", attempt, item_id
        )
        return RunResult(Outcome.lost)
    except ProviderError as error:
        _record_failure(engine, settings, claim, error)
        raise RuntimeError(f"{type(error).__name__}: {error}") from None
    except Exception as error:  # a bug or an outage of ours: retry, keep the provider's task
        _record_failure(engine, settings, claim, TransientError(repr(error), task_alive=True))
        raise
    try:
        path = _complete(engine, settings, claim, result, checked.quality, review_reason)
    except StaleAttempt:
        logger.warning("attempt %s lost item %s before it could complete it", attempt, item_id)
        return RunResult(Outcome.lost)
    progress(1.0)  # already shown when the provider reported its end
    shown(lambda: _describe(claim, result, path))
    if review_reason is not None:
        logger.info("item %s held for review: %s", item_id, review_reason)
        return RunResult(Outcome.held, path)
    logger.info("item %s completed: %s (%s credits)", item_id, path, result.cost_credits)
    return RunResult(Outcome.completed, path)


def _complete(
    engine: sa.Engine,
    settings: Settings,
    claim: Claim,
    result: GenerationResult,
    quality: dict[str, Any] | None = None,
    review_reason: str | None = None,
) -> str:
    """Store the video and complete the item, or hold it for review with `review_reason`
    (fenced; models.items.videos). The video is in hand, and may have been paid for: a database
    outage is waited out for up to a lease's length before the attempt gives up (the next one
    then resumes the provider's task)."""
    storage = Storage(settings.store.storage_url)

    def write() -> str:
        with session_scope(engine) as session:
            item = complete_with_video(
                session,
                storage,
                item_id=claim.item_id,
                group_id=claim.group_id,
                attempt=claim.attempt,
                worker_id=claim.worker_id,
                video=result.video,
                cost_credits=result.cost_credits,
                made_by=made_by(settings, result),
                quality=quality,
                review_reason=review_reason,
            )
        assert item.output_path is not None
        return item.output_path

    return through_outage(settings, f"completing item {claim.item_id}", write, first=1.0)


def through_outage(
    settings: Settings,
    what: str,
    write: Callable[[], T],
    *,
    first: float,
    ceiling: float = 15.0,
) -> T:
    """`write` (a database write that must not be lost: a paid task's id, a made video),
    tried again through a database outage, backing off from `first` seconds, for up to a
    lease's length; then DatabaseUnavailable (the next attempt resumes the provider's task)."""
    backoff = Backoff(what, first, ceiling=ceiling, log=log)
    deadline = time.monotonic() + settings.items.lease_seconds
    while True:
        try:
            return write()
        except DatabaseUnavailable as error:
            if time.monotonic() > deadline:
                raise
            time.sleep(backoff.failed(error))


def _make_video(
    engine: sa.Engine, settings: Settings, claim: Claim, keeper: LeaseKeeper
) -> tuple[GenerationResult, bytes]:
    """The video of the claimed item, and the photo it was made from."""
    with session_scope(engine) as session:
        photo = session.get(Photo, claim.photo_id) if claim.photo_id else None
    if photo is None:
        raise PermanentError(f"item {claim.item_id} has no photo", code=FailureCode.NO_PHOTO)
    stored = Storage(settings.store.storage_url).read(photo.storage_path)
    # Upright, sRGB, no metadata: as stored since intake normalises, and a photo stored before
    # that is normalised here, on its next use (nothing but pixels reaches a provider).
    image = upright_bytes(stored, settings.api.photo_max_side)

    def store_task(task_id: str) -> None:
        # The task is paid for: its id must be kept, through a database outage if need be
        # (up to a lease's length; the provider deletes the task if this still fails).
        def write() -> None:
            with session_scope(engine) as session:
                set_provider_task(
                    session,
                    item_id=claim.item_id,
                    attempt=claim.attempt,
                    worker_id=claim.worker_id,
                    task_id=task_id,
                )

        what = f"keeping the task of item {claim.item_id}"
        through_outage(settings, what, write, first=0.5, ceiling=10)

    request = GenerationRequest(
        item_id=claim.item_id,
        provider=claim.inference_provider,
        image=image,
        prompt=claim.prompt,
        duration_s=claim.duration_s,
        frame_num=claim.frame_num,
        seed=claim.seed,
        provider_task_id=claim.provider_task_id,
    )
    provider = provider_for(claim.inference_provider, settings)
    result = provider.generate(request, on_progress=keeper.report, on_task=store_task)
    if claim.inference_provider is InferenceProvider.wan_local and not settings.wan.servers:
        from reelroute.providers.wan import loads

        # REELROUTE_WAN_RESIDENT=false: this run's own process loaded the pipeline.
        took = loads()
        get_run_logger().info(
            "Wan pipeline loads in this flow run's process: %d (%.1f s)", len(took), sum(took)
        )
    return result, image


def _record_failure(
    engine: sa.Engine, settings: Settings, claim: Claim, error: ProviderError
) -> None:
    transient = isinstance(error, TransientError)
    try:
        with session_scope(engine) as session:
            fail_item(
                session,
                item_id=claim.item_id,
                attempt=claim.attempt,
                worker_id=claim.worker_id,
                error=str(error)[:2000],
                permanent=not transient,
                settings=settings,
                failure_code=error.code,
                cost_credits=error.cost_credits or None,
                keep_provider_task=isinstance(error, TransientError) and error.task_alive,
                retry_after=error.retry_after,
            )
    except StaleAttempt:
        get_run_logger().warning("item %s changed meanwhile; failure not recorded", claim.item_id)


def _describe(claim: Claim, result: GenerationResult, path: str) -> None:
    create_markdown_artifact(
        key=f"video-{claim.item_id}",
        description="The finished video",
        markdown="\n".join(
            [
                f"## Video of item `{claim.item_id}`",
                "",
                "| | |",
                "|---|---|",
                f"| provider | {claim.inference_provider.value} ({result.model}) |",
                f"| attempt | {claim.attempt} |",
                f"| group | {claim.group_id} |",
                f"| prompt | {claim.prompt[:200]} |",
                f"| video | `{path}` ({result.frames} frames, {result.fps:g} fps, "
                f"{result.width}x{result.height}) |",
                f"| cost | {result.cost_credits} credits |",
                f"| provider task | {result.provider_task_id or '-'} |",
            ]
        ),
    )
