"""A Runway API emulator on loopback, close enough to the real API that the real `runwayml` SDK
works against it. Tests and sandbox mode use it; it makes real small mp4 files from the input image.

Scriptable (`EmulatorScript`): latency, a concurrency limit above which tasks are THROTTLED, task
failure codes, HTTP errors for the next requests, expiring output URLs. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from PIL import Image

from reelroute.providers.video import encode_mp4

API_VERSION = "2024-11-06"
MODELS: dict[str, dict[str, Any]] = {
    "gen4_turbo": {
        "ratios": {"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"},
        "durations": set(range(2, 11)),
        "credits_per_second": 5,
        "prompt_required": False,
    },
    "gen4.5": {
        "ratios": {"1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"},
        "durations": set(range(2, 11)),
        "credits_per_second": 12,
        "prompt_required": True,
    },
    "veo3.1": {
        "ratios": {"1280:720", "720:1280", "1080:1920", "1920:1080"},
        "durations": {4, 6, 8},
        "credits_per_second": 40,
        "prompt_required": False,
    },
    "veo3.1_fast": {
        "ratios": {"1280:720", "720:1280", "1080:1920", "1920:1080"},
        "durations": {4, 6, 8},
        "credits_per_second": 15,
        "prompt_required": False,
    },
}
MAX_DATA_URI_BYTES = 5 * 1024 * 1024
MAX_PROMPT_UTF16 = 1000
OUTPUT_FPS = 24
OUTPUT_LONG_SIDE = 96  # small outputs: tests and sandbox want real files, not big ones


@dataclass
class EmulatorScript:
    """How the emulator behaves; tests change it while it runs."""

    latency_s: float = 0.5
    """Seconds a task runs (RUNNING, with progress) once it has a slot."""
    pending_s: float = 0.0
    """Seconds a new task stays PENDING before it may start."""
    concurrency: int = 1_000
    """Tasks running at once; later ones are THROTTLED, in submission order."""
    model_concurrency: dict[str, int] = field(default_factory=dict)
    """Per model, tasks running at once (overrides `concurrency`), as Runway's tiers set it."""
    daily_limits: dict[str, int] = field(default_factory=dict)
    """Per model, tasks created in a rolling day; past it, creation answers 429."""
    credit_balance: int = 1_000_000
    """Credits left; every task created takes its estimate."""
    monthly_credit_limit: int = 10_000_000
    fail_next: deque[tuple[str, str]] = field(default_factory=deque)
    """(failureCode, failure) for the next submitted tasks, one each."""
    http_errors: deque[int] = field(default_factory=deque)
    """Status codes to answer the next API requests with (429, 500, 503, ...), one each."""
    output_ttl_s: float = 3_600.0
    """Seconds an output URL stays valid."""
    api_keys: set[str] | None = None
    """Keys accepted; None accepts any key (401 without one, 401 for a key not in the set)."""
    unknown_status: str | None = None
    """Report every task with this status, as a future API might (e.g. `QUEUED`)."""
    hang_next: int = 0
    """The next API requests (this many) hang for `hang_s` before they are answered."""
    hang_s: float = 30.0
    truncate_next: int = 0
    """The next video downloads (this many) are cut off half-way (the connection drops)."""
    slow_download_s: float = 0.0
    """Seconds each video download takes (sent in small pieces)."""
    outages: dict[str, float] = field(default_factory=dict)
    """Per model, until when (time.time()) its task creation answers 503: an outage that
    lasts. Set it with `outage()`, or `POST /_emulator/outage` from another process."""

    def outage(self, model: str, seconds: float) -> None:
        """`model` answers 503 to every creation for `seconds` from now."""
        self.outages[model] = time.time() + seconds


@dataclass
class _Task:
    id: str
    model: str
    created: float
    start: float
    end: float
    duration: int
    ratio: str
    image: bytes
    failure: tuple[str, str] | None
    prompt: str | None = None
    cancelled: bool = False
    output: bytes | None = None

    def credits(self) -> int:
        return self.credits_of(self.model, self.duration)

    @staticmethod
    def credits_of(model: str, duration: int) -> int:
        """What a task of `model` and `duration` seconds costs."""
        return int(MODELS[model]["credits_per_second"] * duration)


def _duration(body: dict[str, Any]) -> int:
    """A creation's duration in seconds (the model's default when it names none)."""
    return int(body.get("duration") or (8 if str(body["model"]).startswith("veo") else 10))


@dataclass
class RecordedRequest:
    """One request the emulator received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    received_at: float = field(default_factory=time.time)


class RunwayEmulator:
    """The emulator's state and its FastAPI app."""

    def __init__(self, script: EmulatorScript | None = None) -> None:
        self.script = script or EmulatorScript()
        self.requests: list[RecordedRequest] = []
        self.tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._url_tokens: dict[str, tuple[str, float]] = {}
        self.app = self._build_app()
        self.url = ""
        """Where it is served (set by EmulatorServer)."""

    # --- what tests look at -------------------------------------------------------------

    def submissions(self) -> list[dict[str, Any]]:
        """Bodies of every accepted or refused POST /v1/image_to_video."""
        return [r.body or {} for r in self.requests if r.method == "POST"]

    def succeeded(self, prompt: str) -> int:
        """How many tasks of this prompt ran to a video (what Runway bills for)."""
        now = time.time()
        return sum(
            1
            for task in list(self.tasks.values())
            if task.prompt == prompt and not task.cancelled and task.failure is None
            and task.end <= now
        )  # fmt: skip

    def count(self, method: str, path_prefix: str = "/v1/") -> int:
        """How many requests with this method (and path prefix) arrived."""
        return sum(
            1 for r in self.requests if r.method == method and r.path.startswith(path_prefix)
        )

    # --- the API ------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="Runway API emulator", docs_url=None, redoc_url=None)

        @app.middleware("http")
        async def record_and_script(request: Request, call_next: Any) -> Response:
            body = None
            if request.method == "POST":
                try:
                    body = await request.json()
                except ValueError:
                    body = None
            self.requests.append(
                RecordedRequest(request.method, request.url.path, dict(request.headers), body)
            )
            if request.url.path.startswith("/v1/"):
                key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                allowed = self.script.api_keys
                if not key or (allowed is not None and key not in allowed):
                    return _error(401, "Missing or invalid API key")
                if request.headers.get("x-runway-version") != API_VERSION:
                    return _error(400, f"X-Runway-Version must be {API_VERSION}")
                if self.script.http_errors:
                    status = self.script.http_errors.popleft()
                    return _error(status, f"scripted error {status}")
                if self._take("hang_next"):
                    await asyncio.sleep(self.script.hang_s)
            response: Response = await call_next(request)
            return response

        @app.post("/v1/image_to_video")
        async def image_to_video(request: Request) -> Response:
            body = await request.json()
            problem, image = _validate(body)
            if problem:
                return _error(400, problem)
            model = body["model"]
            if time.time() < self.script.outages.get(model, 0.0):
                return _error(503, f"{model} is temporarily unavailable (scripted outage)")
            limit = self.script.daily_limits.get(model)
            if limit is not None and self.used_today(model) >= limit:
                response = _error(429, f"daily generation limit of {model} reached")
                response.headers["retry-after"] = str(int(self.resets_in(model)) + 1)
                return response
            needed = _Task.credits_of(model, _duration(body))
            if self.script.credit_balance < needed:
                return _error(
                    400,
                    f"not enough credits: the balance is {self.script.credit_balance}, this "
                    f"task needs {needed}",
                )
            return JSONResponse(self._submit(body, image))

        @app.post("/_emulator/outage")
        async def scripted_outage(request: Request) -> Response:
            """Tests in another process: `{"model": "gen4_turbo", "seconds": 180}`."""
            body = await request.json()
            self.script.outage(str(body["model"]), float(body["seconds"]))
            return JSONResponse(
                {"model": body["model"], "until": self.script.outages[body["model"]]}
            )

        @app.post("/_emulator/balance")
        async def scripted_balance(request: Request) -> Response:
            """Tests in another process: `{"credits": 0}`."""
            body = await request.json()
            self.script.credit_balance = int(body["credits"])
            return JSONResponse({"credits": self.script.credit_balance})

        @app.get("/v1/organization")
        async def organization() -> Response:
            return JSONResponse(self._organization())

        @app.get("/v1/tasks/{task_id}")
        async def get_task(task_id: str, request: Request) -> Response:
            task = self.tasks.get(task_id)
            if task is None:
                return _error(404, "Task not found")
            return JSONResponse(self._describe(task, str(request.base_url)))

        @app.delete("/v1/tasks/{task_id}")
        async def delete_task(task_id: str) -> Response:
            task = self.tasks.get(task_id)
            if task is None:
                return _error(404, "Task not found")
            task.cancelled = True
            return Response(status_code=204)

        @app.get("/outputs/{token}.mp4")
        async def output(token: str) -> Response:
            task_id, expires = self._url_tokens.get(token, ("", 0.0))
            if not task_id or time.time() > expires:
                return _error(403, "Request has expired")
            task = self.tasks[task_id]
            if task.output is None:
                task.output = _render(task)
            return self._serve(task.output)

        return app

    def _take(self, fault: str) -> bool:
        """Use one of the scripted faults of this kind, if any is left."""
        with self._lock:
            left = getattr(self.script, fault)
            if left <= 0:
                return False
            setattr(self.script, fault, left - 1)
            return True

    def _serve(self, video: bytes) -> Response:
        """A video download: whole, slow, or cut off half-way (the advertised length stays)."""
        truncated = self._take("truncate_next")
        pieces = 8
        delay = self.script.slow_download_s / pieces

        async def body() -> Any:
            size = len(video) // pieces + 1
            for n in range(pieces):
                if truncated and n == pieces // 2:
                    raise ConnectionResetError("scripted: the download is cut off")
                if delay:
                    await asyncio.sleep(delay)
                yield video[n * size : (n + 1) * size]

        headers = {"content-length": str(len(video))}
        return StreamingResponse(body(), media_type="video/mp4", headers=headers)

    def resets_in(self, model: str) -> float:
        """Seconds until the oldest of the day's tasks of `model` leaves the rolling day."""
        since = time.time() - 86_400
        created = [t.created for t in list(self.tasks.values()) if t.model == model]
        day = [c for c in created if c > since]
        return max(0.0, min(day) + 86_400 - time.time()) if day else 0.0

    def used_today(self, model: str) -> int:
        """Tasks of `model` created in the last 24 hours."""
        since = time.time() - 86_400
        return sum(1 for t in list(self.tasks.values()) if t.model == model and t.created > since)

    def _organization(self) -> dict[str, Any]:
        """GET /v1/organization: the tier's per-model limits, today's use, the balance."""
        models = {}
        for name in MODELS:
            models[name] = {
                "maxConcurrentGenerations": self.script.model_concurrency.get(
                    name, self.script.concurrency
                ),
                "maxDailyGenerations": self.script.daily_limits.get(name),
            }
        return {
            "creditBalance": self.script.credit_balance,
            "tier": {"maxMonthlyCreditSpend": self.script.monthly_credit_limit, "models": models},
            "usage": {"models": {n: {"dailyGenerations": self.used_today(n)} for n in MODELS}},
        }

    def _submit(self, body: dict[str, Any], image: bytes) -> dict[str, Any]:
        now = time.time()
        model = body["model"]
        with self._lock:
            ready = now + self.script.pending_s
            # Slots: a task starts when fewer than its model's concurrency earlier tasks of the
            # model are still running (Runway's limits are per model).
            slots = self.script.model_concurrency.get(model, self.script.concurrency)
            ends = sorted(
                t.end
                for t in self.tasks.values()
                if not t.cancelled and t.end > ready and t.model == model
            )
            start = ready
            if len(ends) >= slots:
                start = ends[len(ends) - slots]
            failure = self.script.fail_next.popleft() if self.script.fail_next else None
            duration = _duration(body)
            task = _Task(
                id=str(uuid.uuid4()),
                model=model,
                created=now,
                start=start,
                end=start + self.script.latency_s,
                duration=duration,
                ratio=body["ratio"],
                image=image,
                failure=failure,
                prompt=body.get("promptText"),
            )
            self.tasks[task.id] = task
            self.script.credit_balance -= task.credits()
        return {"id": task.id, "estimatedCost": {"credits": task.credits()}}

    def _describe(self, task: _Task, base_url: str) -> dict[str, Any]:
        now = time.time()
        answer: dict[str, Any] = {
            "id": task.id,
            "createdAt": datetime.fromtimestamp(task.created, UTC).isoformat(),
        }
        if self.script.unknown_status is not None:
            return answer | {"status": self.script.unknown_status}
        if task.cancelled:
            started = now >= task.start
            return answer | {
                "status": "CANCELLED",
                "cost": {"credits": task.credits() if started else 0},
            }
        if now < task.start:
            throttled = now >= task.created + self.script.pending_s
            status = "THROTTLED" if throttled else "PENDING"
            return answer | {"status": status, "estimatedCost": {"credits": task.credits()}}
        if now < task.end:
            progress = (now - task.start) / max(task.end - task.start, 1e-9)
            return answer | {
                "status": "RUNNING",
                "progress": round(progress, 4),
                "estimatedCost": {"credits": task.credits()},
            }
        if task.failure is not None:
            code, message = task.failure
            refunded = code.startswith("SAFETY")
            return answer | {
                "status": "FAILED",
                "failure": message,
                "failureCode": code,
                "cost": {"credits": 0 if refunded else task.credits()},
            }
        token = secrets.token_urlsafe(16)
        self._url_tokens[token] = (task.id, now + self.script.output_ttl_s)
        return answer | {
            "status": "SUCCEEDED",
            "output": [f"{base_url.rstrip('/')}/outputs/{token}.mp4"],
            "cost": {"credits": task.credits()},
        }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validate(body: Any) -> tuple[str | None, bytes]:
    """Runway's checks of an image_to_video request: a message, or None and the image bytes."""
    if not isinstance(body, dict):
        return "Body must be a JSON object", b""
    model = body.get("model")
    if model not in MODELS:
        return f"Invalid model {model!r}; expected one of {sorted(MODELS)}", b""
    spec = MODELS[model]
    if body.get("ratio") not in spec["ratios"]:
        return f"Invalid ratio {body.get('ratio')!r} for {model}", b""
    duration = body.get("duration")
    if duration is not None and duration not in spec["durations"]:
        return f"Invalid duration {duration!r} for {model}", b""
    prompt = body.get("promptText")
    if prompt is None and spec["prompt_required"]:
        return f"promptText is required for {model}", b""
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt:
            return "promptText must be a non-empty string", b""
        if len(prompt.encode("utf-16-le")) // 2 > MAX_PROMPT_UTF16:
            return f"promptText must be at most {MAX_PROMPT_UTF16} characters", b""
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or not 0 <= seed <= 4_294_967_295):
        return "seed must be an integer from 0 to 4294967295", b""
    image = body.get("promptImage")
    if not isinstance(image, str) or not image.startswith("data:image/"):
        return "promptImage must be a data URI in this emulator", b""
    if len(image) > MAX_DATA_URI_BYTES:
        return "promptImage data URI is larger than 5MB", b""
    try:
        header, encoded = image.split(",", 1)
        if not header.endswith(";base64"):
            raise ValueError(header)
        data = base64.b64decode(encoded, validate=True)
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.verify()
    except (ValueError, binascii.Error, OSError):
        return "promptImage is not a valid image", b""
    return None, data


def _render(task: _Task) -> bytes:
    """A real mp4 of the task's ratio and duration: the input image, slowly zooming in."""
    w, h = (int(part) for part in task.ratio.split(":"))
    scale = OUTPUT_LONG_SIDE / max(w, h)
    width, height = max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)
    with Image.open(io.BytesIO(task.image)) as source:
        base = source.convert("RGB").resize((width * 2, height * 2))
    count = task.duration * OUTPUT_FPS // 4  # a quarter of the frames: small files, same length

    def frames() -> Any:
        for n in range(count):
            crop = int(n / max(count, 1) * width / 2)
            box = (
                crop,
                crop * height // width,
                width * 2 - crop,
                (width * 2 - crop) * height // width,
            )
            yield np.asarray(base.crop(box).resize((width, height)), dtype=np.uint8)

    return encode_mp4(frames(), fps=OUTPUT_FPS / 4, width=width, height=height)


class EmulatorServer:
    """The emulator served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, emulator: RunwayEmulator | None = None, port: int = 0) -> None:
        self.emulator = emulator or RunwayEmulator()
        config = uvicorn.Config(
            self.emulator.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Serve in the background; returns once the port is open."""
        self._thread.start()
        deadline = time.time() + 10
        while not self._server.started:
            if time.time() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Runway emulator did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = self.emulator.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
