"""Logs as text or one JSON object per line, with the item's context where it is bound, and
never a secret."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
from pydantic import SecretStr

from reelroute.models.assembly import load_settings
from reelroute.models.core.logs import attach_json, current_context, handler_for, log_context

ADMIN, RUNWAY = "a" * 12 + "dmin-token-0123456789-abcdef", "key_" + "r" * 40


def settings_of(log_format: str):
    return load_settings(
        _env_file=None,
        log_format=log_format,
        admin_token=SecretStr(ADMIN),
        runway_api_secret=SecretStr(RUNWAY),
    )


def logger_with(log_format: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.logs.{log_format}.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler_for(settings_of(log_format), stream))
    return logger, stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_bound_context_and_nothing_unbound():
    logger, stream = logger_with("json")
    logger.info("before")
    with log_context(item_id="i-1", attempt=2, provider="wan_local"):
        logger.info("claimed %s", "i-1")
        with log_context(flow_run_id="run-9", worker_id=None):
            logger.warning("inner")
        assert current_context() == {"item_id": "i-1", "attempt": "2", "provider": "wan_local"}
    logger.info("after")
    before, claimed, inner, after = lines(stream)
    assert set(before) == {"time", "level", "logger", "message", "pid"}
    assert claimed["message"] == "claimed i-1" and claimed["attempt"] == "2"
    assert inner["flow_run_id"] == "run-9" and inner["item_id"] == "i-1"
    assert inner["level"] == "warning" and "worker_id" not in inner
    assert "item_id" not in after


def test_a_thread_does_not_see_another_threads_context():
    logger, stream = logger_with("json")
    with log_context(item_id="mine"):
        thread = threading.Thread(target=logger.info, args=("from a thread",))
        thread.start()
        thread.join()
    [line] = lines(stream)
    assert "item_id" not in line


def test_secrets_never_reach_a_line_in_either_format():
    for log_format in ("json", "text"):
        logger, stream = logger_with(log_format)
        logger.info("calling Runway with %s and token %s", RUNWAY, ADMIN)
        try:
            raise RuntimeError(f"refused: Authorization: Bearer {ADMIN}")
        except RuntimeError:
            logger.exception("failed")
        text = stream.getvalue()
        assert ADMIN not in text and RUNWAY not in text
        assert text.count("***") >= 3


def test_text_is_the_default_format():
    logger, stream = logger_with("text")
    with log_context(item_id="i-2"):
        logger.info("hello")
    assert stream.getvalue().rstrip().endswith("hello") and not stream.getvalue().startswith("{")
    assert load_settings(_env_file=None).local.log_format == "text"


def test_attach_json_adds_one_handler_and_only_in_json_mode():
    name = "test.logs.attached"
    attach_json(settings_of("text"), name)
    assert logging.getLogger(name).handlers == []
    attach_json(settings_of("json"), name)
    attach_json(settings_of("json"), name)
    assert len(logging.getLogger(name).handlers) == 1
    logging.getLogger(name).handlers.clear()


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="unknown log fields"), log_context(item="x"):
        pass
