"""Secrets never reach a log line."""

import io
import json

import structlog

from vp import log as vplog


def test_secret_values_and_keys_are_scrubbed():
    out = io.StringIO()
    vplog.configure("DEBUG", stream=out)
    vplog.register_secret("hunter2-passcode")
    logger = structlog.get_logger("t")
    logger.info(
        "joining",
        url="https://x.example/j/1?pwd=hunter2-passcode",
        passcode="whatever",
        nested={"token": "abc", "ok": "fine hunter2-passcode"},
    )
    line = out.getvalue()
    assert "hunter2-passcode" not in line
    record = json.loads(line)
    assert record["passcode"] == "***"
    assert record["nested"] == {"token": "***", "ok": "fine ***"}


def test_bound_context_appears():
    out = io.StringIO()
    vplog.configure("INFO", stream=out)
    vplog.bind_vp("vp42", "janus")
    structlog.get_logger("t").info("hello")
    record = json.loads(out.getvalue())
    assert record["vp_id"] == "vp42" and record["platform"] == "janus"
    structlog.contextvars.clear_contextvars()


def test_percent_encoded_and_overlapping_secrets_are_scrubbed():
    vplog.register_secret("p@ss w0rd/1")
    vplog.register_secret("w0rd")
    text = vplog.scrub("a=p@ss w0rd/1 b=p%40ss%20w0rd%2F1 c=p%40ss+w0rd%2F1 d=w0rd")
    assert text == "a=*** b=*** c=*** d=***"
