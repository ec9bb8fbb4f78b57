"""Structured logs: `LOG_FORMAT=json` prints one JSON object per line (ts, level, logger, msg and
any extras given with `log.info(..., extra={"event_id": ...})`); the default is text for humans.

Every entry point calls `configure(settings)` once instead of `logging.basicConfig`.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "color_message", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


# Addresses that carry a credential: a station's signed token (/s/...), an activation code
# (/bind/...), and query parameters holding bearer tokens, screen keys or codes (/me?t=,
# /org?t=, /stations/{id}/screen?key=). An access log must not hand them to whoever reads it.
_SECRET_PATHS = re.compile(r"^(/s/|/bind/)[^/?]+")
_SECRET_PARAMS = frozenset({"t", "token", "key", "code", "access_token"})


def redact_path(path: str) -> str:
    """The request line's path with its credentials replaced by `***`."""
    base, sep, query = path.partition("?")
    base = _SECRET_PATHS.sub(r"\1***", base)
    if sep and query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    return base + sep + query


class RedactSecrets(logging.Filter):
    """For uvicorn's access log, whose record arguments are (client, method, path, http
    version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecrets) for f in access.filters):
        access.addFilter(RedactSecrets())


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    """Root handler in the chosen format; Kafka clients' chatter is kept to warnings."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    if log_format == "json":
        # uvicorn installs its own text handlers; route its records through the root instead.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            lg = logging.getLogger(name)
            lg.handlers = []
            lg.propagate = True


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """For uvicorn.run(log_config=...): None keeps the root set-up above (json), else uvicorn's
    own default (text)."""
    if log_format == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return dict(LOGGING_CONFIG)


def dict_config(log_format: str, level: str = "INFO") -> dict[str, Any] | None:
    """A logging.config.dictConfig for frameworks that take one (faust's `logging_config`);
    None keeps the framework's own text set-up."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "services.logging.JsonFormatter"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {"kafka": {"level": "WARNING"}, "aiokafka": {"level": "WARNING"}},
    }
