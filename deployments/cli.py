"""The `reelroute` command line."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelroute.models.assembly import Settings, get_settings
from reelroute.models.core import (
    AUTO,
    DatabaseUnavailable,
    GroupPriority,
    InferenceProvider,
    Pool,
    ReelrouteError,
    SettingsError,
    TaskSpec,
    configure_logging,
    stamp,
)
from reelroute.models.intake import (
    Intake,
    Intaken,
    PhotoTask,
    Upload,
    deadline_from_text,
    idempotency,
    run_once,
    take_in,
)
from reelroute.models.planning import Policy
from reelroute.models.reporting import Statistics, provider_stats
from reelroute.models.store import Storage, make_engine, session_scope, upgrade

if TYPE_CHECKING:
    from reelroute.deployments.replay import ReplayOptions, TraceTask

app = typer.Typer(
    help="reelroute: photos to short videos on Wan GPUs or Runway.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (REELROUTE_DATABASE_URL)."""
    settings = _settings()
    upgrade(settings.store.database_url)
    typer.echo(f"database is at the newest schema: {_safe_url(settings.store.database_url)}")


@app.command("normalise-photos")
def normalise_photos() -> None:
    """Normalise the photos stored before intake did (upright, sRGB, no metadata): once after
    an upgrade, for the pull workers that read photos from the store themselves (flow runs
    normalise an older photo on its next use anyway). Safe to run again."""
    from reelroute.models.intake import normalise_stored

    settings = _settings()
    engine = make_engine(settings.store.database_url)
    with session_scope(engine) as session:
        changed = normalise_stored(session, Storage(settings.store.storage_url), settings)
    engine.dispose()
    typer.echo(f"{changed} photo(s) normalised")


def stats_answer(statistics: Statistics) -> str:
    """`GET /api/admin/stats`'s JSON answer for these statistics (the seed's envelope)."""
    return json.dumps(
        {"success": True, "data": statistics.model_dump(mode="json")}, indent=2, ensure_ascii=False
    )


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's answer.")] = False,
) -> None:
    """Items per provider and status, spend and time to finish."""
    settings = _settings()
    engine = make_engine(settings.store.database_url)
    try:
        with session_scope(engine) as session:
            data = provider_stats(session)
    except DatabaseUnavailable as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(stats_answer(data))
        return
    columns = ["total", "pending", "processing", "completed", "failed", "cancelled", "credits"]
    typer.echo(f"{'provider':<20}" + "".join(f"{c:>11}" for c in columns))
    for provider, entry in data.items():
        figures = entry.model_dump()
        typer.echo(f"{provider.value:<20}" + "".join(f"{figures[c]:>11}" for c in columns))


@app.command()
def add(
    photos: Annotated[list[Path], typer.Argument(help="Image files (JPEG, PNG, WebP).")],
    prompt: Annotated[str, typer.Option(help="What should move, and how.")],
    provider: Annotated[
        str,
        typer.Option(
            help="wan_local, runway_gen4_turbo, runway_gen4.5, runway_veo3.1, "
            "runway_veo3.1_fast, or auto (the routing policy)."
        ),
    ] = AUTO,
    group: Annotated[
        str | None,
        typer.Option(help="Group name: the existing group of that name, else a new one."),
    ] = None,
    group_id: Annotated[str | None, typer.Option(help="Add to this existing group.")] = None,
    priority: Annotated[
        GroupPriority | None,
        typer.Option(
            help="The group's priority: a new group gets it; an existing group must have it "
            "(normal for a new group when left out)."
        ),
    ] = None,
    full_quality: Annotated[
        bool | None,
        typer.Option(
            "--full-quality/--any-quality",
            help="Wan videos only from hosts whose preset keeps the model card's quality: a new "
            "group gets it; an existing group must say the same.",
        ),
    ] = None,
    frames: Annotated[int | None, typer.Option(help="Wan frame count (4k+1).")] = None,
    duration: Annotated[int | None, typer.Option(help="Seconds of video.")] = None,
    deadline: Annotated[
        str | None,
        typer.Option(help="Ready within, e.g. 90m, 4h, 1h30m (default: the group's target)."),
    ] = None,
    new: Annotated[
        bool,
        typer.Option(
            "--new", help="Add a new batch even if these photos and options were added already."
        ),
    ] = False,
) -> None:
    """Create video tasks from photos on disk: one item per photo, all or none. Running the
    same command again (after a timeout, say) adds nothing: it prints the first batch (its
    idempotency key is derived from the photos and options); `--new` adds another. Without
    `--group` or `--group-id`, the photos go to a group named after the first photo."""
    settings = _settings()
    engine = make_engine(settings.store.database_url)
    try:
        uploads = [Upload(path.name, path.read_bytes()) for path in photos]
        target = uuid.UUID(group_id) if group_id else None
        task = TaskSpec(
            prompt=prompt,
            frame_num=frames,
            duration_s=duration,
            inference_provider=provider,
            deadline_seconds=deadline_from_text(deadline, field="--deadline"),
        )
        intake = Intake(
            group_id=target,
            group_name=None if target else (group or f"cli {photos[0].stem}"),
            priority=priority,
            wan_full_quality=full_quality,
            photo_tasks=[PhotoTask(upload, task) for upload in uploads],
        )
        options = [group or "", group_id or "", priority or "", task.model_dump_json()]
        if full_quality is not None:
            options.append(f"full_quality={full_quality}")
        files = [part for upload in uploads for part in (upload.filename, upload.data)]
        fingerprint = idempotency.request_hash(*options, *files)
        with session_scope(engine) as session:

            def work() -> dict[str, list[str]]:
                done = take_in(
                    session, intake, settings=settings, storage=Storage(settings.store.storage_url)
                )
                return {"lines": _added_lines(done)}

            answer = run_once(
                session,
                key=None if new else f"cli-{fingerprint}",
                scope="cli add",
                fingerprint=fingerprint,
                settings=settings,
                work=work,
                status_code=0,
            )
    except (OSError, ValueError) as error:
        typer.echo(f"nothing was added: {error}", err=True)
        raise typer.Exit(1) from None
    except ReelrouteError as error:
        problems = getattr(error, "problems", [str(error)])
        typer.echo("nothing was added:\n  " + "\n  ".join(problems), err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if answer.replayed:
        typer.echo("already added (the same photos and options; --new adds again):")
    for line in answer.body["lines"]:
        typer.echo(line)


def _added_lines(done: Intaken) -> list[str]:
    """What `add` prints: the group, then each item's id, provider, due time and reason."""
    lines = [f"group {done.group.id} ({done.group.name}, {done.group.priority.value})"]
    for item in done.items:
        lines.append(
            f"{item.id}  {item.inference_provider.value:<18} due {stamp(item.due_at)}  "
            f"{item.route_reason}"
        )
    return lines


def _pairs(text: str | None, what: str) -> dict[str, str]:
    if not text:
        return {}
    pairs = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise typer.BadParameter(f"{part!r}: write {what}=VALUE, separated by commas")
        pairs[name.strip()] = value.strip()
    return pairs


@app.command()
def replay(
    trace: Annotated[Path, typer.Argument(help="CSV: created_at, group, priority, ...")],
    gpus: Annotated[int, typer.Option(help="GPUs running Wan.")] = 4,
    gpu_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A GPU host instead of --gpus: NAME:GPUS:PRESET:TIME (TIME: its time for a "
            "video against the trace's Wan time, e.g. h200:4:fast:0.06); repeat for several."
        ),
    ] = None,
    runway_concurrency: Annotated[
        str,
        typer.Option(help="Runway's concurrency: one number, or MODEL=C,... (gen4_turbo=5)."),
    ] = "5",
    budget: Annotated[
        str | None, typer.Option(help="Daily caps: PROVIDER=DOLLARS,... (runway_veo3.1=20).")
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(help="deadline, threshold, all-gen4 or all-wan; repeat for several."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Draws the durations the trace leaves out.")] = 0,
    outage: Annotated[
        list[str] | None,
        typer.Option(
            help="A Runway model answering 503 for a while: MODEL@HH:MM+DURATION "
            "(gen4_turbo@12:00+45m); repeat for several."
        ),
    ] = None,
    breakers: Annotated[
        bool,
        typer.Option(
            "--breakers/--no-breakers",
            help="--no-breakers: no breaker opens on a failure rate (the day without them).",
        ),
    ] = True,
    acceptance: Annotated[
        str | None,
        typer.Option(
            help="The share of each provider's videos kept: PROVIDER=SHARE,... (wan_local=0.7), "
            "or per Wan preset: wan_local@fast=0.7,wan_local@full=0.95 (the presets of "
            "--gpu-host); the others are rejected and made again on the group's next option."
        ),
    ] = None,
    count_redos: Annotated[
        bool,
        typer.Option(
            "--count-redos/--no-count-redos",
            help="--no-count-redos: routing ignores the chance of a redo (the day without it).",
        ),
    ] = True,
    history: Annotated[
        int,
        typer.Option(
            min=0,
            help="Judged Wan videos each group has before the day, kept at its trace's "
            "kept_wan_local share (what routing learned on earlier days).",
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    gpu_hour_cost: Annotated[
        float,
        typer.Option(min=0, help="Dollars per GPU-hour: the GPUs' bill beside Runway's spend."),
    ] = 0.0,
    gpu_billing: Annotated[
        str,
        typer.Option(
            help="always-on (the GPUs cost every hour; a Wan video is free to routing) or "
            "per-second (each Wan video costs its GPU seconds; routing weighs them)."
        ),
    ] = "always-on",
    sweep_gpus: Annotated[
        str | None,
        typer.Option(
            help="Replay the day for each GPU count (0..16, 0..16/2 or 1,2,4), under both "
            "billings at --gpu-hour-cost: Runway, GPUs, total and late per count, the cheapest "
            "on time marked. Scales --gpus, or the one --gpu-host."
        ),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="A GPU count for each hour of the day at --gpu-hour-cost, replayed, beside the "
            "best fixed count (as `reelroute plan`).",
        ),
    ] = False,
    chart: Annotated[
        Path | None, typer.Option(help="--sweep-gpus: also draw the sweep as a PNG chart here.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="--sweep-gpus or --plan: also write the figures as JSON.")
    ] = None,
) -> None:
    """Replay a day through the real routing, dispatch-order and budget code, on a simulated
    clock with simulated providers, in a throw-away database; one line per policy, and a
    `hindsight` line: the deadline policy fed the true durations. With --sweep-gpus, one line
    per GPU count instead; with --plan, the GPUs to run at each hour (docs/routing.md)."""
    from reelroute.deployments.replay import (
        GpuHostSpec,
        OutageSpec,
        ReplayOptions,
        TraceError,
        read_trace,
    )
    from reelroute.deployments.replay import as_json as to_json
    from reelroute.deployments.replay import replay as run_replay
    from reelroute.deployments.sweep import BILLINGS, parse_counts, plan_gpus

    try:
        tasks = read_trace(trace, seed=seed)
        policies = list(policy or ["deadline"])
        for name in policies:
            Policy(name)
        if runway_concurrency.strip().isdigit():
            concurrency, default = {}, int(runway_concurrency)
        else:
            concurrency = {k: int(v) for k, v in _pairs(runway_concurrency, "MODEL").items()}
            default = 5
        caps = {InferenceProvider(k): float(v) for k, v in _pairs(budget, "PROVIDER").items()}
        hosts = tuple(GpuHostSpec.parse(text) for text in gpu_host or [])
        outages = tuple(OutageSpec.parse(text) for text in outage or [])
        kept: dict[InferenceProvider, float] = {}
        per_preset: dict[tuple[InferenceProvider, str], float] = {}
        for key, value in _pairs(acceptance, "PROVIDER").items():
            name, _, preset = key.partition("@")
            if preset:
                per_preset[(InferenceProvider(name), preset)] = float(value)
            else:
                kept[InferenceProvider(name)] = float(value)
        if any(not 0 <= share <= 1 for share in [*kept.values(), *per_preset.values()]):
            raise ValueError("--acceptance: each share is between 0 and 1 (wan_local=0.7)")
        if gpu_billing not in BILLINGS:
            raise ValueError(f"--gpu-billing {gpu_billing!r}: always-on or per-second")
        counts = parse_counts(sweep_gpus) if sweep_gpus is not None else None
        if (counts is not None or plan) and len(hosts) > 1:
            raise ValueError("--sweep-gpus and --plan scale one --gpu-host (or --gpus)")
        if (counts is not None or plan) and not gpu_hour_cost:
            raise ValueError("--sweep-gpus and --plan price the GPUs: give --gpu-hour-cost")
    except (OSError, ValueError, TraceError) as error:
        typer.echo(f"cannot replay: {error}", err=True)
        raise typer.Exit(2) from None
    options = ReplayOptions(
        gpus=gpus,
        gpu_hosts=hosts,
        runway_concurrency=concurrency,
        default_concurrency=default,
        budgets=caps,
        outages=outages,
        breakers=breakers,
        acceptance=kept,
        preset_acceptance=per_preset,
        count_redos=count_redos,
        seed=seed,
        history=history,
        gpu_hour_cost=gpu_hour_cost,
        gpu_billing=gpu_billing,
    )
    if counts is not None:
        _sweep(tasks, options, counts, chart, out, as_json, trace.name)
        return
    if plan:
        found = plan_gpus(tasks, options)
        if out is not None:
            out.write_text(json.dumps(found.as_json(), indent=2))
        typer.echo(json.dumps(found.as_json(), indent=2) if as_json else found.text())
        return
    outcomes = run_replay(tasks, options, [*policies, "hindsight"])
    if as_json:
        typer.echo(json.dumps(to_json(outcomes), indent=2))
        return
    fleet = ", ".join(f"{h.name} {h.gpus}x {h.preset} ({h.time:g}x)" for h in hosts)
    down = "; ".join(f"{o.model} down {o.start:%H:%M}+{o.minutes:g} min" for o in outages)
    typer.echo(
        f"{len(tasks)} tasks, {fleet or f'{gpus} GPU(s)'}, Runway concurrency {runway_concurrency}"
        + (f"; {down}, breakers {'on' if breakers else 'off'}" if outages else "")
        + (
            "; kept "
            + ", ".join(
                [f"{p.value} {share:.0%}" for p, share in kept.items()]
                + [f"{p.value}@{preset} {share:.0%}" for (p, preset), share in per_preset.items()]
            )
            + f", redos {'counted' if count_redos else 'not counted'} by routing"
            if kept or per_preset
            else ""
        )
        + (f"; {history} judged Wan videos per group before the day" if history else "")
    )
    for outcome in outcomes:
        typer.echo(outcome.line())


def _sweep(
    tasks: list[TraceTask],
    options: ReplayOptions,
    counts: list[int],
    chart: Path | None,
    out: Path | None,
    as_json: bool,
    name: str,
) -> None:
    """`reelroute replay --sweep-gpus`: the table (or JSON), the JSON file and the chart."""
    from reelroute.deployments.sweep import sweep_chart, sweep_gpus, sweep_table

    lines = sweep_gpus(tasks, options, counts)
    figures = [line.as_json() for line in lines]
    if out is not None:
        out.write_text(json.dumps(figures, indent=2))
    if chart is not None:
        host = options.gpu_hosts[0] if options.gpu_hosts else None
        speed = f", Wan at {host.preset} ({host.time:g}x)" if host else ""
        title = f"{name}: {len(tasks)} tasks, ${options.gpu_hour_cost:g}/GPU-hour{speed}"
        try:
            sweep_chart(lines, chart, title)
        except ValueError as error:
            typer.echo(f"cannot draw the chart: {error}", err=True)
            raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    typer.echo(
        f"{len(tasks)} tasks at ${options.gpu_hour_cost:g} per GPU-hour (always-on: every hour "
        "of the day; per-second: the seconds the GPUs make videos):"
    )
    typer.echo(sweep_table(lines))


@app.command("plan")
def plan_command(
    trace: Annotated[Path, typer.Argument(help="CSV: created_at, group, priority, ...")],
    gpu_hour_cost: Annotated[float, typer.Option(min=0, help="Dollars per GPU-hour.")] = 2.5,
    gpu_host: Annotated[
        list[str] | None,
        typer.Option(help="The GPU host the schedule scales: NAME:GPUS:PRESET:TIME."),
    ] = None,
    acceptance: Annotated[
        str | None,
        typer.Option(help="The share of Wan's videos kept: wan_local=0.9 or wan_local@fast=0.9."),
    ] = None,
    runway_concurrency: Annotated[str, typer.Option(help="Runway's concurrency.")] = "5",
    seed: Annotated[int, typer.Option(help="Draws the durations the trace leaves out.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the figures as JSON here.")] = None,
) -> None:
    """The GPUs to run at each hour of the UTC day for a day of work (a schedule to scale
    rented GPUs up and down), replayed, beside the best fixed count."""
    replay(
        trace,
        gpu_host=gpu_host,
        runway_concurrency=runway_concurrency,
        acceptance=acceptance,
        seed=seed,
        as_json=as_json,
        gpu_hour_cost=gpu_hour_cost,
        plan=True,
        out=out,
    )


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback only by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int | None, typer.Option(help="Port (default REELROUTE_EMULATOR_PORT, 8181).")
    ] = None,
    latency: Annotated[float, typer.Option(help="Seconds each task runs.")] = 20.0,
    concurrency: Annotated[int, typer.Option(help="Tasks running at once; more are THROTTLED.")] = (
        5
    ),
) -> None:
    """Serve the Runway API emulator (what sandbox mode talks to) until Ctrl-C."""
    import uvicorn

    from reelroute.providers.emulator import EmulatorScript, RunwayEmulator

    port = port or _settings().local.emulator_port
    fake = RunwayEmulator(EmulatorScript(latency_s=latency, concurrency=concurrency))
    typer.echo(f"Runway API emulator on http://{host}:{port} (latency {latency} s)")
    uvicorn.run(fake.app, host=host, port=port, log_level="warning")


@app.command()
def deploy() -> None:
    """Create or update the work pools, queues, deployments and the zombie automation."""
    from reelroute.deployments.prefect_setup import deploy as deploy_all

    deploy_all(_settings())
    typer.echo("deployed: pools gpu and cloud, generate-video/wan and generate-video/runway")


@app.command()
def dispatch() -> None:
    """Feed Prefect from the database and reconcile, until Ctrl-C. On PostgreSQL run it on two
    or more hosts: one leads, the others stand by and take over (docs/operations.md)."""
    import threading

    from reelroute.flows.loop import dispatch_loop

    settings = _settings()
    configure_logging(settings)
    stop = threading.Event()
    try:
        dispatch_loop(settings, stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def webhooks() -> None:
    """Deliver item events to webhook endpoints, signed, at least once, in order per item,
    until Ctrl-C (`reelroute up` runs it). On PostgreSQL run it on two or more hosts: one
    leads, the others stand by."""
    import threading

    from reelroute.flows.webhooks import run_sender

    settings = _settings()
    configure_logging(settings)
    stop = threading.Event()
    try:
        run_sender(settings, stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def worker(
    pool: Annotated[Pool, typer.Option(help="gpu (Wan) or cloud (Runway).")],
    gpus: Annotated[
        str | None,
        typer.Option(
            help="gpu pool: the GPUs of this host, one pipeline process each (0,1,...; cpu,cpu "
            "for CPU processes). Default: every visible CUDA device, else one CPU process."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Worker name in the Prefect UI.")] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="gpu pool: the Wan preset (full, fast, cached, compiled, fast-compiled, "
            "fast-fp8); default REELROUTE_WAN_PRESET."
        ),
    ] = None,
) -> None:
    """Start a Prefect process worker for a pool. On a GPU host (pool gpu) also one long-lived
    Wan pipeline process per GPU, which the flow runs use; all supervised, stopped together.
    The preset is checked before anything starts."""
    import os
    import socket
    import sys

    from reelroute.deployments.launcher import worker_argv, worker_env

    if preset is not None:
        os.environ["REELROUTE_WAN_PRESET"] = preset
        get_settings.cache_clear()
    settings = _settings()  # refuse to start on invalid settings
    label = name or f"{pool}-{socket.gethostname()}"
    if pool is Pool.gpu:
        from reelroute.deployments.gpu_host import parse_gpus, preflight, run_gpu_host
        from reelroute.providers.base import ConfigurationError

        try:
            chosen = parse_gpus(gpus)
            checked = preflight(settings)
        except (ValueError, ConfigurationError) as error:
            typer.echo(f"reelroute worker: {error}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"GPU host {label}: preset {checked.label}: {checked.description}")
        if settings.wan.resident:
            configure_logging(settings)
            run_gpu_host(settings, chosen, label)
            return
        # Each flow run loads the pipeline itself, on the first GPU named.
        env = worker_env(dict(os.environ))
        if chosen[0].isdigit():
            env["CUDA_VISIBLE_DEVICES"] = chosen[0]
        from reelroute.flows.dispatch import queues_for

        queues = queues_for(pool, checked.keeps_quality)
        argv = worker_argv(pool, label, limit=1, queues=queues)
        os.execve(sys.executable, argv, env)  # noqa: S606
    os.execve(sys.executable, worker_argv(pool, label), worker_env(dict(os.environ)))  # noqa: S606


@app.command("wan-server")
def wan_server(
    socket_path: Annotated[Path, typer.Option("--socket", help="The Unix socket to serve on.")],
    gpu: Annotated[str, typer.Option(help="The GPU's label in the health report.")] = "0",
) -> None:
    """One GPU's pipeline process: load Wan once, then make the videos of this host's flow runs
    one at a time (started by `reelroute worker --pool gpu`)."""
    from reelroute.providers.wan_process import run_server

    settings = _settings()
    configure_logging(settings)
    run_server(settings, socket_path, gpu)


@app.command()
def gpus() -> None:
    """The Wan pipeline processes of this host: GPU, model, load time, videos, memory."""
    from reelroute.deployments.gpu_host import local_health

    found = local_health()
    if not found:
        typer.echo("no Wan pipeline process is running on this host (as this user)")
    for health in found:
        typer.echo(health.line())


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
) -> None:
    """Serve the web app: the admin pages at /admin, the REST API under /api, its OpenAPI
    page at /docs."""
    import uvicorn

    from reelroute.ui.app import create_app

    settings = _settings()
    if settings.api.admin_token is None:
        typer.echo(
            "note: REELROUTE_ADMIN_TOKEN is not set: the admin API refuses every call", err=True
        )
    configure_logging(settings)
    # uvicorn's own loggers go to the root handler too (one format for every line)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", log_config=None)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address of the web app.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web app.")] = 7860,
    prefect_database: Annotated[
        str | None,
        typer.Option(
            help="Run the Prefect server on this PostgreSQL database (postgresql://…; created "
            "when missing) instead of SQLite (REELROUTE_PREFECT_DATABASE_URL)."
        ),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(
            help="The GPUs Wan runs on, one pipeline process each (0,1,...). Default: every "
            "visible CUDA device, else one CPU process."
        ),
    ] = None,
) -> None:
    """Everything on this machine: database, Prefect server, deployments, a gpu and a cloud
    worker, the dispatcher (and the Runway emulator in sandbox mode), until Ctrl-C."""
    import contextlib
    import os
    import sys

    from reelroute.deployments.gpu_host import parse_gpus
    from reelroute.deployments.up import run_up

    if prefect_database is not None:
        os.environ["REELROUTE_PREFECT_DATABASE_URL"] = prefect_database
        get_settings.cache_clear()
    try:
        chosen = parse_gpus(gpus)
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    code = run_up(_settings(), host=host, port=port, gpus=chosen)
    # Everything `up` started is stopped: leave now. Prefect's exit hooks would try to send
    # this process's last events to the server it just stopped, retrying for minutes.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)
