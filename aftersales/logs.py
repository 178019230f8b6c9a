"""Logging set-up shared by every process: the fields each line carries, its format (text for
people, JSON for a log pipeline: AFTERSALES_LOG_FORMAT), and what may never reach a line."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import sys
from typing import IO, Any

import uvicorn.config
from temporalio import activity, workflow

from api import request_ids
from config.redaction import REDACTED, redact, set_secrets
from config.settings import Settings

__all__ = ["REDACTED", "redact"]

# The context fields a line may carry, in the order a JSON line lists them.
CONTEXT_FIELDS = ("request_id", "case_id", "workflow_id", "run_id", "activity")
# LogRecord's own attributes: anything else on a record came from `extra=` and is logged too.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message", "temporal_workflow", "temporal_activity"}
    | set(CONTEXT_FIELDS)
)


def _redacted(value: Any) -> Any:
    # Arguments keep their type (uvicorn's access formatter unpacks them) unless their text
    # holds something to hide.
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, int | float):
        return value
    text = str(value)
    hidden = redact(text)
    return value if hidden == text else hidden


class Redact(logging.Filter):
    """Hide status tokens, keys and secrets in a record's message, arguments and traceback.

    On every handler the processes install (a filter on a logger misses the records its
    children propagate), so no line any logger writes holds one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            # Formatted once here, redacted: an error's text may quote a URL or a header.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


# Kept under its old name: the access log config of earlier releases refers to it.
RedactStatusTokens = Redact


class Context(logging.Filter):
    """Put request_id, case_id, workflow_id, run_id and activity on each record, where known.

    From the API request being served (api.request_ids), the running activity, or the
    workflow whose `workflow.logger` wrote the line. A case's workflow ID is its case ID.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        values: dict[str, str] = dict(request_ids.fields())
        wf = getattr(record, "temporal_workflow", None)
        act = getattr(record, "temporal_activity", None)
        if isinstance(wf, dict):
            values.update(workflow_id=wf["workflow_id"], run_id=wf["run_id"])
        elif isinstance(act, dict):
            values.update(
                workflow_id=act["workflow_id"],
                run_id=act["workflow_run_id"],
                activity=act["activity_type"],
            )
        elif activity.in_activity():
            info = activity.info()
            if info.workflow_id is not None:
                values.update(workflow_id=info.workflow_id, run_id=info.workflow_run_id or "")
            values["activity"] = info.activity_type
        if "workflow_id" in values:
            values.setdefault("case_id", values["workflow_id"])
        for name, value in values.items():
            if value and getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context fields, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value:
                line[name] = value
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_"):
                line[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["error"] = record.exc_text
        # Extras are caller-chosen: the line as a whole is redacted once more.
        return redact(json.dumps(line, ensure_ascii=False, default=str))


def settings_secrets(settings: Settings) -> list[str | None]:
    """The configured values no line may show: every API key and shared secret."""
    return [
        *settings.api_keys_by_token(),
        settings.webhook_secret,
        settings.carrier_webhook_secret,
        settings.temporal_api_key,
    ]


def _filters() -> list[logging.Filter]:
    return [Context(), Redact()]


# httpx logs every request at INFO: a partner call is a metric (activities.metrics) and, with
# tracing on, a span; a line each is noise.
QUIET = ("httpx", "httpcore")


def log_handler(settings: Settings, service: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing lines in the configured format (to stderr by default), redacted and
    with their context fields; `service` names the process in JSON lines (api, worker)."""
    set_secrets(settings_secrets(settings))
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(service))
        # The SDK appends the workflow's and activity's details to the message text; in JSON
        # they are fields of their own (Context), so the message stays the message.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for f in _filters():
        handler.addFilter(f)
    return handler


def configure_logging(settings: Settings, service: str, *, level: int = logging.INFO) -> None:
    """Log every line of this process to stderr through `log_handler`, from `level` up."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(log_handler(settings, service))
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def uvicorn_log_config(
    settings: Settings | None = None, service: str = "api", level: str = "info"
) -> dict[str, Any]:
    """uvicorn's own logging config, every line redacted and with its context fields, the
    app's own lines (root logger, at `level`) through it too; JSON lines with
    AFTERSALES_LOG_FORMAT=json."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    if settings is not None:
        set_secrets(settings_secrets(settings))
    filters = config.setdefault("filters", {})
    filters["context"] = {"()": Context}
    filters["redact"] = {"()": Redact}
    for handler in config["handlers"].values():
        handler["filters"] = ["context", "redact"]
    # On the logger too (not only its handler) so no handler added later sees the raw path.
    config["loggers"]["uvicorn.access"]["filters"] = ["redact"]
    if settings is not None and settings.log_format == "json":
        for name in ("default", "access"):
            config["formatters"][name] = {"()": JsonFormatter, "service": service}
    # The app's own loggers (and the SDK's) go through the same handler as uvicorn's errors.
    # uvicorn's `trace` is below DEBUG, a level only uvicorn's own loggers know.
    root_level = "DEBUG" if level == "trace" else level.upper()
    config["root"] = {"handlers": ["default"], "level": root_level}
    for name in QUIET:
        config["loggers"][name] = {"level": "WARNING"}
    return config
