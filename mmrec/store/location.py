"""Where a database lives: a local folder or an object-store URI, and the storage options to reach it.

A database is a folder of Lance tables. ``--db`` takes a local path (``mmrec-db``, ``file:///data/db``)
or an object-store URI: ``s3://bucket/path`` (also any S3-compatible server), ``gs://bucket/path``,
``az://container/path``. Credentials and endpoints come from each cloud's standard environment
(:data:`ENV_OPTIONS`) and are handed to LanceDB and Lance as ``storage_options``, so the same
variables reach every process of a run (the CLI, the service, Ray workers).

For S3 these are ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_REGION`` (or ``AWS_DEFAULT_REGION``), ``AWS_ENDPOINT_URL`` for a non-AWS server, and
``AWS_ALLOW_HTTP=true`` for a plain-HTTP endpoint.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from mmrec.config import DEFAULT_CACHE
from mmrec.errors import InvalidArgumentError

#: The lock file's name in a local database folder.
LOCK_NAME = ".mmrec-write.lock"
#: URI schemes of object stores LanceDB reaches (``s3+ddb`` is S3 with a DynamoDB commit store).
REMOTE_SCHEMES = ("s3", "s3+ddb", "gs", "az", "abfs")

#: Per scheme: (environment variable, storage option) pairs read by :func:`storage_options`.
ENV_OPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "s3": (
        ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
        ("AWS_SESSION_TOKEN", "aws_session_token"),
        ("AWS_DEFAULT_REGION", "aws_region"),
        ("AWS_REGION", "aws_region"),  # after AWS_DEFAULT_REGION: the more specific one wins
        ("AWS_ENDPOINT", "aws_endpoint"),
        ("AWS_ENDPOINT_URL", "aws_endpoint"),
        ("AWS_ENDPOINT_URL_S3", "aws_endpoint"),
        ("AWS_ALLOW_HTTP", "allow_http"),
        ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "aws_virtual_hosted_style_request"),
    ),
    "gs": (
        ("GOOGLE_SERVICE_ACCOUNT", "google_service_account"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "google_service_account"),
        ("GOOGLE_SERVICE_ACCOUNT_KEY", "google_service_account_key"),
    ),
    "az": (
        ("AZURE_STORAGE_ACCOUNT_NAME", "azure_storage_account_name"),
        ("AZURE_STORAGE_ACCOUNT_KEY", "azure_storage_account_key"),
        ("AZURE_STORAGE_SAS_TOKEN", "azure_storage_sas_token"),
        ("AZURE_CLIENT_ID", "azure_client_id"),
        ("AZURE_CLIENT_SECRET", "azure_client_secret"),
        ("AZURE_TENANT_ID", "azure_tenant_id"),
        ("AZURE_STORAGE_USE_EMULATOR", "azure_storage_use_emulator"),
        ("AZURE_ALLOW_HTTP", "allow_http"),
    ),
}
ENV_OPTIONS["s3+ddb"] = ENV_OPTIONS["s3"]
ENV_OPTIONS["abfs"] = ENV_OPTIONS["az"]


def scheme(uri: str) -> str | None:
    """The URI scheme (``"s3"``), or ``None`` for a local path."""
    if "://" not in uri:
        return None
    return uri.split("://", 1)[0].lower()


def is_local(uri: str) -> bool:
    """Whether ``uri`` is a folder on this machine (a path or ``file://``), not an object store."""
    return scheme(uri) in (None, "file")


def local_path(uri: str) -> Path:
    """The folder of a local ``uri``."""
    return Path(uri.removeprefix("file://"))


def check_uri(uri: str) -> str:
    """``uri`` itself when mmrec can open it; :class:`InvalidArgumentError` naming the valid schemes otherwise."""
    s = scheme(uri)
    if s is None or s == "file":
        return uri
    if s not in REMOTE_SCHEMES:
        raise InvalidArgumentError(
            f"unsupported database URI scheme {s + '://'!r} in {uri!r}; use a local folder, file://, "
            + ", ".join(f"{r}://" for r in REMOTE_SCHEMES)
        )
    if not uri.split("://", 1)[1].strip("/"):
        raise InvalidArgumentError(f"database URI {uri!r} names no bucket; use e.g. {s}://bucket/path")
    return uri


def absolute(uri: str) -> str:
    """``uri`` with a local path made absolute (what another process, e.g. a Ray worker, can open)."""
    return str(local_path(uri).expanduser().resolve()) if is_local(uri) else uri


def storage_options(uri: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The LanceDB/Lance ``storage_options`` for ``uri`` from the cloud's standard environment.

    Parameters
    ----------
    uri : str
        The database.
    env : mapping, optional
        The environment (default ``os.environ``).

    Returns
    -------
    dict
        Empty for a local path; only the variables that are set.
    """
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for var, option in ENV_OPTIONS.get(scheme(uri) or "", ()):
        value = env.get(var)
        if value:
            out[option] = value
    return out


def env_for_workers(uri: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables that other processes (Ray workers) need to reach ``uri``."""
    env = os.environ if env is None else env
    return {var: env[var] for var, _ in ENV_OPTIONS.get(scheme(uri) or "", ()) if env.get(var)}


def lock_file(uri: str) -> Path:
    """Where the write lock of ``uri`` lives: in the database folder, or for an object store on this machine.

    An object store has no file to ``flock``: its lock is a file under ``$MMREC_LOCK_DIR`` (default
    ``~/.cache/mmrec/locks``) named after the URI, so writers on one machine take turns. Writers on
    different machines are not serialised by it: their writes stay idempotent and LanceDB's commit
    conflicts are retried (see :mod:`mmrec.store.writer`).
    """
    if is_local(uri):
        return local_path(uri) / LOCK_NAME
    root = Path(os.environ.get("MMREC_LOCK_DIR") or Path(DEFAULT_CACHE) / "locks").expanduser()
    key = hashlib.blake2b(uri.rstrip("/").encode(), digest_size=12).hexdigest()
    return root / f"{key}.lock"
