"""Statistics per provider: counts from the count ledger (cost independent of the table's size),
time to finish over each provider's latest completions, spend. One typed answer, shown by the
REST API, `reelroute stats` and the admin's Statistics page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field, RootModel
from sqlmodel import Session, col, select

from reelroute.models.core.enums import InferenceProvider, ItemStatus
from reelroute.models.core.tables import VideoItem
from reelroute.models.planning.estimates import quantiles
from reelroute.models.planning.replanning import predicted_late
from reelroute.models.store.ledger import StatusCounts, count_ledger
from reelroute.models.store.tallies import gpu_tallies, move_tallies

FINISH_TIME_WINDOW = 1000  # time-to-finish figures cover each provider's latest completions


class ProviderStats(StatusCounts):
    """What `GET /api/admin/stats` answers per provider (SEED.md §7, and ours)."""

    success_rate: float | None = Field(
        description="completed / (completed + failed); null before anything ended."
    )
    median_seconds_to_finish: float | None = Field(
        description=f"Created → finished, over the latest {FINISH_TIME_WINDOW} completed items."
    )
    p90_seconds_to_finish: float | None = Field(description="As the median, 90th percentile.")
    dollars: float = Field(description="credits / 100.")
    backlog: int = Field(description="Items waiting to start (pending).")
    on_time_rate: float | None = Field(
        default=None, description="Share of the latest completions finished by their due time."
    )
    predicted_late: int = Field(
        default=0, description="Waiting items the last replay found likely to miss their due time."
    )
    moved_away: int = Field(default=0, description="Items moved from this provider while waiting.")
    moved_here: int = Field(default=0, description="Items moved to this provider while waiting.")
    gpu_seconds: float = Field(
        default=0.0,
        description="Wan: GPU seconds of the attempts that made a video (claim to video).",
    )
    gpu_dollars: float = Field(
        default=0.0,
        description="Wan: what those seconds cost at REELROUTE_GPU_HOUR_COST (GPU spend, beside "
        "`dollars`: Runway's).",
    )


class Statistics(RootModel[dict[InferenceProvider, ProviderStats]]):
    """Statistics of every provider, keyed by provider."""

    def __getitem__(self, provider: InferenceProvider) -> ProviderStats:
        return self.root[provider]

    def items(self) -> list[tuple[InferenceProvider, ProviderStats]]:
        """(provider, figures) pairs, in the providers' order."""
        return list(self.root.items())


@dataclass(frozen=True)
class Finishes:
    """A provider's latest completions: seconds from created to finished, and how many were
    done by their due time."""

    seconds: list[float]
    on_time: int


def finish_times(session: Session, provider: InferenceProvider) -> Finishes:
    """The provider's latest completed items (at most FINISH_TIME_WINDOW, read through
    ix_video_items_completed_provider)."""
    query = (
        select(VideoItem.created_at, VideoItem.finished_at, VideoItem.due_at)
        .where(col(VideoItem.status) == ItemStatus.completed)
        .where(col(VideoItem.inference_provider) == provider)
        .order_by(col(VideoItem.finished_at).desc())
        .limit(FINISH_TIME_WINDOW)
    )
    seconds, on_time = [], 0
    for created, done, due in session.exec(query):
        if done:
            seconds.append((done - created).total_seconds())
            on_time += done <= due
    return Finishes(seconds, on_time)


def _provider_stats(counts: StatusCounts, finishes: Finishes) -> ProviderStats:
    ended = counts.completed + counts.failed
    times = sorted(finishes.seconds)
    return ProviderStats(
        **counts.model_dump(),
        success_rate=round(counts.completed / ended, 4) if ended else None,
        median_seconds_to_finish=quantiles(times)[0] if times else None,
        p90_seconds_to_finish=quantiles(times)[1] if times else None,
        dollars=counts.credits / 100,
        backlog=counts.pending,
        on_time_rate=round(finishes.on_time / len(times), 4) if times else None,
    )


def provider_stats(session: Session) -> Statistics:
    """The statistics of every provider (the REST API's, the CLI's and the admin's answer)."""
    counts: Mapping[InferenceProvider, StatusCounts] = count_ledger(session)
    answer = {
        provider: _provider_stats(entry, finish_times(session, provider))
        for provider, entry in counts.items()
    }
    for provider, late in predicted_late(session).items():
        if (stats := answer.get(InferenceProvider(provider))) is not None:
            stats.predicted_late = late
    for (origin, to), moves in move_tallies(session).items():
        if (away := answer.get(InferenceProvider(origin))) is not None:
            away.moved_away += moves
        if (here := answer.get(InferenceProvider(to))) is not None:
            here.moved_here += moves
    wan = answer.get(InferenceProvider.wan_local)
    if wan is not None:
        tallies = gpu_tallies(session)
        wan.gpu_seconds = round(sum(t.seconds for t in tallies), 1)
        wan.gpu_dollars = round(sum(t.dollars for t in tallies), 4)
    return Statistics(answer)
