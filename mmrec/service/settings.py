"""The settings of ``mmrec serve``: one table of keys, read from flags, ``MMREC_*`` variables and a TOML file.

Every key can be given in three places; the first that has it wins::

    flag (--port 8080)  >  environment (MMREC_PORT=8080)  >  file (port = 8080 in mmrec.toml)  >  default

The file is named by ``--config`` or ``MMREC_CONFIG``; its keys are the flag names with underscores
(``api_key``, ``log_format``) at the top level. An unknown key in the file is an error that lists the valid
ones, so a typo never silently falls back to a default. Environment variables are read by name only
(``MMREC_`` + the key in capitals): other ``MMREC_*`` variables belong to other parts of mmrec. An empty
variable counts as unset (``MMREC_API_KEY=`` turns no key on).

This module imports nothing heavy: the argument parser uses it for its help texts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mmrec.config import DEFAULT_DB
from mmrec.errors import InvalidArgumentError
from mmrec.recsys.serving import serving_problem

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "ServeSettings",
    "describe",
    "env_name",
    "load_settings",
    "read_config_file",
    "setting_keys",
    "value_problem",
]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOG_FORMATS = ("text", "json")
#: Environment variable that names the config file when ``--config`` is not given.
CONFIG_ENV = "MMREC_CONFIG"


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``mmrec serve`` can be told, with its default.

    Attributes
    ----------
    db : str
        Database folder or LanceDB URI.
    host : str
        Interface to listen on (loopback by default: this machine only).
    port : int
        TCP port.
    api_key : str or None
        Key required for writes (and reads with ``private``); prefer ``MMREC_API_KEY`` or the file to the flag,
        whose value shows in ``ps``.
    private : bool
        Require the key for reads and ``/metrics`` too.
    threads : int
        Engine calls computed at once, per worker (0: twice the CPU cores).
    workers : int
        Server processes, each with its own engine and serving snapshot (0: one per CPU core). 1 serves from
        the ``mmrec serve`` process itself: on 2 shared cores 2 workers measured 0.92-1.14x its requests/s
        (benchmarks/README.md, "HTTP service load"), at twice the memory and start-up.
    log_level : str
        ``critical``, ``error``, ``warning``, ``info`` (one line per request) or ``debug``.
    log_format : str
        ``text`` for people, ``json`` (one object per line) for log collectors.
    access_log : bool
        Log one line per request (at ``info``).
    metrics : bool
        Serve Prometheus metrics at ``/metrics`` (behind the key when ``private``).
    header_timeout : float
        Seconds a client has to send a request's line and headers, from its first byte (or from connecting);
        a connection that takes longer is closed (slow-header clients, "slowloris").
    body_timeout : float
        Seconds a request body may pause between two chunks before the request is answered 408.
    keep_alive_timeout : float
        Seconds an idle keep-alive connection is kept open between requests.
    shutdown_timeout : float
        On SIGTERM, seconds the requests in progress get to finish before they are cancelled.
    max_upload_mib : float
        Largest uploaded image or sound, MiB.
    max_json_mib : float
        Largest JSON body, MiB.
    max_batch : int
        Most interactions in one ``POST /interactions``.
    serving : str
        Where recommendations and similar items read the item vectors: ``memory`` (the snapshot), ``lancedb``
        (LanceDB's index: a catalog too large for memory) or ``auto`` (memory within ``memory_budget_mb``).
    memory_budget_mb : float
        The snapshot size up to which ``auto`` serves from memory, MB per worker (0: a quarter of physical memory).
    """

    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    private: bool = False
    threads: int = 0
    workers: int = 1
    log_level: str = "info"
    log_format: str = "text"
    access_log: bool = True
    metrics: bool = False
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    shutdown_timeout: float = 20.0
    max_upload_mib: float = 20.0
    max_json_mib: float = 4.0
    max_batch: int = 10_000
    serving: str = "auto"
    memory_budget_mb: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            problem = value_problem(f.name, getattr(self, f.name))
            if problem:
                raise InvalidArgumentError(f"--{f.name.replace('_', '-')} {problem}")
        if self.private and not self.api_key:
            raise InvalidArgumentError("--private needs an API key (--api-key or MMREC_API_KEY)")

    @property
    def memory_budget(self) -> float | None:
        """``memory_budget_mb`` as the engine takes it: None (0 here) is the default, a quarter of physical memory."""
        return self.memory_budget_mb or None


_POSITIVE = ("header_timeout", "body_timeout", "keep_alive_timeout", "max_upload_mib", "max_json_mib")


def value_problem(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``key`` (``"must be 1-65535, got 0"``), or ``None``."""
    if key == "port" and not 0 < value < 65536:
        return f"must be 1-65535, got {value}"
    if key == "threads" and value < 0:
        return f"must be at least 1 (or 0 for the default), got {value}"
    if key == "workers" and value < 0:
        return f"must be at least 1 (or 0 for one per CPU core), got {value}"
    if key == "log_level" and value not in LOG_LEVELS:
        return f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}"
    if key == "log_format" and value not in LOG_FORMATS:
        return f"must be one of {', '.join(LOG_FORMATS)}, got {value!r}"
    if key in _POSITIVE and not (math.isfinite(value) and value > 0):
        return f"must be a positive number, got {value}"
    if key == "shutdown_timeout" and not (math.isfinite(value) and value >= 0):
        return f"must be 0 or more seconds, got {value}"
    if key == "max_batch" and value < 1:
        return f"must be at least 1, got {value}"
    if key == "serving":
        return serving_problem(value)
    if key == "memory_budget_mb" and not (math.isfinite(value) and value >= 0):
        return f"must be a positive number of MB (or 0 for a quarter of physical memory), got {value}"
    if key in ("host", "db") and not value:
        return "must not be empty"
    return None


def setting_keys() -> tuple[str, ...]:
    """The valid keys, in the order of :class:`ServeSettings`."""
    return tuple(f.name for f in fields(ServeSettings))


def env_name(key: str) -> str:
    """The environment variable of a key: ``log_format`` → ``MMREC_LOG_FORMAT``."""
    return f"MMREC_{key.upper()}"


_DEFAULTS = ServeSettings.__dataclass_fields__
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _kind(key: str) -> type:
    """The Python type a key holds (``str`` for ``api_key``, whose default is ``None``)."""
    default = _DEFAULTS[key].default
    return str if default is None else type(default)


def _from_text(key: str, text: str, where: str) -> Any:
    """A value of ``key`` parsed from an environment variable's text."""
    kind = _kind(key)
    if kind is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise InvalidArgumentError(f"{where}: expected true or false, got {text!r}")
    if kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise InvalidArgumentError(f"{where}: expected {noun}, got {text!r}") from None
    return text


def _from_file(key: str, value: Any, where: str) -> Any:
    """A value of ``key`` from the TOML file, which must already have the right type."""
    kind = _kind(key)
    # TOML has real booleans and numbers: "8080" for a port is refused rather than guessed at.
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
        return value
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    raise InvalidArgumentError(f"{where}: expected {names[kind]}, got {value!r}")


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in a TOML file, checked against the valid keys.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    dict
        Key → value (typed), for the keys the file sets.

    Raises
    ------
    InvalidArgumentError
        The file cannot be read, is not TOML, has an unknown key (the message lists the valid ones)
        or a value of the wrong type.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidArgumentError(f"cannot read config file {str(p)!r}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(f"config file {str(p)!r} is not valid TOML: {e}") from None
    valid = setting_keys()
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise InvalidArgumentError(
            f"unknown key {unknown[0]!r} in config file {str(p)!r}; valid keys: {', '.join(valid)}"
        )
    out = {k: _from_file(k, v, f"{p.name}: {k}") for k, v in data.items()}
    if out.get("api_key") and _readable_by_others(p):
        # Not an error (the operator may mean it), but a key in a world-readable file is worth one line.
        print(f"mmrec: warning: {p.name} holds api_key and is readable by other users (chmod 600 it)", file=sys.stderr)
    return out


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config: str | os.PathLike[str] | None = None,
) -> ServeSettings:
    """The settings from flags, environment and file, in that order of precedence, over the defaults.

    Parameters
    ----------
    flags : mapping, optional
        Key → value of the flags given on the command line; ``None`` values count as not given.
    env : mapping, optional
        The environment (default ``os.environ``); ``MMREC_<KEY>`` variables are read, empty ones ignored.
    config : str or path, optional
        The TOML file (default: ``$MMREC_CONFIG`` when set, else no file).

    Returns
    -------
    ServeSettings

    Raises
    ------
    InvalidArgumentError
        An unknown flag key, an unreadable or invalid file, an unparsable variable, or an invalid value.
    """
    env = os.environ if env is None else env
    flags = dict(flags or {})
    valid = setting_keys()
    bad = [k for k in flags if k not in valid]
    if bad:
        raise InvalidArgumentError(f"unknown setting {bad[0]!r}; valid keys: {', '.join(valid)}")
    path = config if config is not None else (env.get(CONFIG_ENV) or None)
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}  # where each value came from, so that an error names it
    if path:
        for key, value in read_config_file(path).items():
            merged[key], source[key] = value, f"{Path(path).name}: {key}"
    for key in valid:
        text = env.get(env_name(key))
        if text:
            merged[key], source[key] = _from_text(key, text, env_name(key)), env_name(key)
    for key, value in flags.items():
        if value is not None:
            merged[key], source[key] = value, f"--{key.replace('_', '-')}"
    for key, value in merged.items():
        problem = value_problem(key, value)
        if problem:
            raise InvalidArgumentError(f"{source[key]} {problem}")
    return ServeSettings(**merged)


def describe(settings: ServeSettings) -> dict[str, Any]:
    """The settings as a dict for a log line, the API key masked."""
    out = dataclasses.asdict(settings)
    if out.get("api_key"):
        out["api_key"] = "***"
    return out
