"""What a client may read of an error message: one line, no paths of the server.

Kept apart from :mod:`mmrec.service.errors` (which maps errors to answers and imports the service state)
so that the state's health check can use it without an import cycle.
"""

from __future__ import annotations

import re

__all__ = ["DATABASE_UNAVAILABLE", "is_database_failure", "public_message"]

#: What a client is told when the database failed in a way no mmrec error describes (a cleaned version,
#: a vanished file): the database, not the request, is at fault, and a retry may well succeed.
DATABASE_UNAVAILABLE = "the database could not be read (it may be changing); try again"

# An absolute path (two components or more; POSIX or Windows) or a URI with a path: replaced by its last part.
_PATH = re.compile(
    r"(?:\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"]+)"  # s3://bucket/db/items.lance, file:///srv/db
    r"|(?:\b[A-Za-z]:[\\/][^\s'\",;]+)"  # C:\\srv\\db
    r"|(?:(?<![\w.~-])(?:/[^\s'\",;:()/]+){2,}/?)"  # /srv/mmrec/db/items.lance/_versions/3.manifest
)


def public_message(text: str, uri: str | None = None) -> str:
    """``text`` as a client may see it: its first line, without the database location or other paths.

    Parameters
    ----------
    text : str
        An error message.
    uri : str, optional
        The database's location, dropped where the message names it ("no item 'x' in '/srv/db'" → "no item 'x'").

    Returns
    -------
    str
        One line (at most 500 characters); each path replaced by its last component (``3.manifest``).
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    if uri:
        line = line.replace(f"--db {uri}", "--db DB")
        for form in (repr(uri), uri):
            line = line.replace(f" in {form}", "").replace(f" at {form}", "").replace(f"database {form}", "database")
        line = line.replace(repr(uri), "the database")
    # Whatever path is left (a file inside the database, a temporary upload) shrinks to its last part.
    line = _PATH.sub(lambda m: _last_part(m.group(0)), line)
    return line[:500]


def _last_part(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("/\\"))[-1] or "…"


def is_database_failure(exc: BaseException) -> bool:
    """Whether an exception that no mmrec error wraps is the database's (I/O, a LanceDB error), not a bug.

    LanceDB raises ``OSError`` for missing files and ``RuntimeError`` / ``ValueError`` carrying ``lance`` in
    the message for most of the rest; everything else is treated as a bug (500, logged with its traceback).
    """
    if isinstance(exc, OSError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError | ValueError) and any(
        mark in text for mark in ("lance", ".manifest", "_versions", "object store", "not found: /")
    )
