"""Calls of the REST API that many API tests make: as the admin or a worker, a group, photos,
tasks, a claim, a completion with a video."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from reelroute.providers.video import encode_mp4
from tests.ui.helpers import ADMIN, WORKER


class Client(Protocol):
    """A TestClient, or an httpx client of a live server."""

    @property
    def post(self) -> Callable[..., Any]:
        """POST to a URL."""
        ...


def as_admin(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_group(client: Client, priority: str = "normal") -> str:
    answer = client.post(
        "/api/admin/groups",
        json={"name": f"g {uuid.uuid4().hex[:8]}", "priority": priority},
        headers=as_admin(),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["id"]


def upload(client: Client, group_id: str, *files: Any) -> list[dict[str, Any]]:
    answer = client.post(
        f"/api/admin/groups/{group_id}/photos",
        headers=as_admin(),
        files=[("files", f) for f in files],
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def add(client: Client, group_id: str, tasks: list[dict[str, Any]]) -> Any:
    return client.post(
        "/api/admin/tasks/add", headers=as_admin(), json={"group_id": group_id, "tasks": tasks}
    )


def claim(
    client: Client, worker_type: str = "runway", worker_id: str = "w1"
) -> dict[str, Any] | None:
    answer = client.post(
        "/api/worker/next-task",
        headers=as_admin(WORKER),
        json={"worker_id": worker_id, "worker_type": worker_type, "lease_duration_seconds": 600},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def mp4_of(color: int) -> bytes:
    frames = (np.full((16, 16, 3), color, np.uint8) for _ in range(5))
    return encode_mp4(frames, fps=8, width=16, height=16)


def complete(client: Client, item_id: str, attempt: int, worker_id: str, video: bytes) -> Any:
    return client.post(
        f"/api/worker/tasks/{item_id}/complete",
        headers=as_admin(WORKER),
        data={"attempt": str(attempt), "worker_id": worker_id},
        files={"video": ("v.mp4", video, "video/mp4")},
    )
