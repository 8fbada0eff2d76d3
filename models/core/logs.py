"""How every reelroute process logs: one line per record, as text (the default) or as one JSON
object per line (REELROUTE_LOG_FORMAT=json), with the item's context wherever it is known
(`item_id`, `attempt`, `provider`, `flow_run_id`, `worker_id`), so that one item's path through
the web app, the dispatcher, its flow run and the GPU host is one log query. Secrets (the
tokens, the Runway key, the webhook signing key) are replaced by `***` in every record, and every
URL's query string by `?…` (a signed link's signature, a receiver's token). httpx and httpcore
log at WARNING: their line per request (every poll, every webhook post, each with its full
URL) is not written.

`log_context(item_id=…, …)` binds the context for the code it wraps (a contextvar: it follows
threads' and tasks' own contexts); `configure_logging(settings)` installs the handler on the
root logger of a process.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from reelroute.models.core.settings import SharedConfig
from reelroute.models.core.text import without_url_queries

FIELDS = ("item_id", "attempt", "provider", "flow_run_id", "worker_id")
"""The context a record carries when it is known."""
TEXT_FORMAT = "%(asctime)s %(name)s %(message)s"
MASK = "***"

_CONTEXT: ContextVar[dict[str, str]] = ContextVar("reelroute_log_context", default={})  # noqa: B039


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind context fields (None ones are left out) to every record logged inside."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log fields {sorted(unknown)}; use {', '.join(FIELDS)}")
    bound = {**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(bound)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_context() -> dict[str, str]:
    """The fields bound here."""
    return dict(_CONTEXT.get())


class ContextFilter(logging.Filter):
    """Adds the bound context to each record (a field given with `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _CONTEXT.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


QUIET_LOGGERS = ("httpx", "httpcore")
"""Libraries whose INFO lines are one per request: kept to WARNING and above."""


class Redactor(logging.Filter):
    """Replaces each secret's value in the record's message (and exception) by `***`, and every
    URL's query by `?…`."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return without_url_queries(text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())  # every record: a URL can be in any
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.msg, record.args = message, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the context
    fields it carries, and the exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName if record.processName != "MainProcess" else None,
            "pid": record.process,
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps({k: v for k, v in entry.items() if v is not None}, default=str)


def secrets_of(settings: SharedConfig) -> list[str]:
    """Every secret value the settings hold."""
    found = [
        settings.api.admin_token,
        settings.api.worker_token,
        settings.api.metrics_token,
        settings.runway.api_secret,
        settings.webhooks.signing_key,
    ]
    return [secret.get_secret_value() for secret in found if secret is not None]


def handler_for(settings: SharedConfig, stream: TextIO | None = None) -> logging.Handler:
    """A handler that writes as the settings say, with context and redaction."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.local.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    handler.addFilter(Redactor(secrets_of(settings)))
    return handler


def configure_logging(settings: SharedConfig, *, level: int = logging.INFO) -> None:
    """Make the root logger write as the settings say (replacing its handlers)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler_for(settings))
    root.setLevel(level)
    quiet_libraries()


def quiet_libraries() -> None:
    """httpx's and httpcore's per-request lines off (QUIET_LOGGERS at WARNING)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def attach_json(settings: SharedConfig, *names: str) -> None:
    """With REELROUTE_LOG_FORMAT=json, also write the records of the loggers `names` as JSON
    (a process whose logging another library set up, e.g. a Prefect flow run); once per logger.
    With `text`, nothing changes."""
    quiet_libraries()
    if settings.local.log_format != "json":
        return
    for name in names:
        logger = logging.getLogger(name)
        if any(getattr(handler, "reelroute", False) for handler in logger.handlers):
            continue
        handler = handler_for(settings)
        handler.reelroute = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
