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


def test_stdlib_logging_and_unretrieved_task_exceptions_are_scrubbed():
    """asyncio reports a task's exception nobody retrieved through stdlib logging, with
    the exception's text: that line goes through the same scrubber as structlog's."""
    import asyncio
    import gc
    import logging

    out = io.StringIO()
    vplog.configure("INFO", stream=out)
    vplog.register_secret("Pwd-9xQ2-leak")

    async def leak() -> None:
        async def boom() -> None:
            raise RuntimeError("join failed for https://zoom.us/j/1?pwd=Pwd-9xQ2-leak")

        task = asyncio.get_running_loop().create_task(boom())
        await asyncio.sleep(0.01)
        del task

    asyncio.run(leak())
    gc.collect()
    logging.getLogger("some.library").warning("retrying %s", "token Pwd-9xQ2-leak")
    text = out.getvalue()
    assert "Task exception was never retrieved" in text
    assert "retrying" in text
    assert "Pwd-9xQ2-leak" not in text
    for line in text.splitlines():
        json.loads(line)  # every line is one JSON object


def test_task_owner_retrieves_exceptions_of_finished_tasks():
    import asyncio
    import gc

    from vp.tasks import TaskOwner

    out = io.StringIO()
    vplog.configure("INFO", stream=out)

    async def run() -> None:
        owner = TaskOwner()

        async def boom() -> None:
            raise ValueError("secret-ish detail")

        owner.spawn(boom(), "boom")
        await asyncio.sleep(0.01)
        await owner.aclose()

    asyncio.run(run())
    gc.collect()
    text = out.getvalue()
    assert "never retrieved" not in text
    assert '"task.failed"' in text and "secret-ish detail" not in text
