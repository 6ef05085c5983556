"""The ``mmrec`` command line: a thin layer over :class:`mmrec.engine.Engine`.

:func:`main` parses the arguments (:mod:`mmrec.cli.parser`), runs the subcommand
(:mod:`mmrec.cli.commands`, :mod:`mmrec.cli.demo`) and turns the errors it expects into one
``mmrec: error:`` line on stderr and exit code 1 (130 on Ctrl-C). Heavy libraries (torch, lancedb,
the models) are imported only by the subcommands that need them, so ``mmrec --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Callable

from mmrec.cli.commands import (
    cmd_encoders,
    cmd_evaluate,
    cmd_forget,
    cmd_import,
    cmd_info,
    cmd_ingest,
    cmd_interact,
    cmd_items,
    cmd_rebuild_profiles,
    cmd_recommend,
    cmd_serve,
    cmd_similar,
    cmd_train,
)
from mmrec.cli.demo import cmd_demo
from mmrec.cli.parser import build_parser

__all__ = ["build_parser", "main"]

#: Subcommand name (as in :func:`build_parser`) to the function that runs it and returns the exit code.
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ingest": cmd_ingest,
    "items": cmd_items,
    "info": cmd_info,
    "encoders": cmd_encoders,
    "train": cmd_train,
    "interact": cmd_interact,
    "import-interactions": cmd_import,
    "forget": cmd_forget,
    "rebuild-profiles": cmd_rebuild_profiles,
    "recommend": cmd_recommend,
    "similar": cmd_similar,
    "demo": cmd_demo,
    "evaluate": cmd_evaluate,
    "serve": cmd_serve,
}


class _DeferredPackage(types.ModuleType):
    """A package whose ``__init__`` runs at the first attribute asked of it; its submodules import as usual."""

    def __getattr__(self, attr: str) -> object:
        self.__class__ = types.ModuleType  # first: an attribute asked while the body runs is the real lookup
        try:
            self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]
        except BaseException:
            sys.modules.pop(self.__name__, None)  # as a failed import: the next import tries again
            raise
        return getattr(self, attr)


#: Imported by lancedb (through ``lance_namespace``) for its model classes only; its ``__init__`` also
#: builds the REST namespace client, whose pydantic validators cost ~1.5 s of CPU here (of ~3.7 s for
#: ``import lancedb``), which a local database never uses.
_NAMESPACE_CLIENT = "lance_namespace_urllib3_client"


def _defer_namespace_client() -> None:
    """Defer the REST client's ``__init__`` until something uses it (a local database never does).

    Nothing changes but the time: the submodules (``.models``) import as usual, and the first use of
    the package itself (an object-store or REST namespace connection) runs its ``__init__`` then.
    """
    if _NAMESPACE_CLIENT in sys.modules:
        return
    import importlib.util

    try:
        spec = importlib.util.find_spec(_NAMESPACE_CLIENT)
    except (ImportError, ValueError):
        return
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return
    module = _DeferredPackage(_NAMESPACE_CLIENT)
    module.__spec__, module.__loader__, module.__package__ = spec, spec.loader, _NAMESPACE_CLIENT
    module.__path__ = list(spec.submodule_search_locations)
    module.__file__ = spec.origin
    sys.modules[_NAMESPACE_CLIENT] = module


def _skip_override_checks() -> None:
    """Give lancedb the no-op ``override`` it uses on Python >= 3.12, on 3.11 too.

    On 3.11 lancedb takes ``override``/``EnforceOverrides`` from the ``overrides`` package, which checks
    each decorated method's signature against its base class by reading bytecode when the class is
    defined: ~0.5 s of CPU per process here, for a check that only matters to lancedb's own developers.
    On 3.12+ lancedb uses ``typing.override`` (a no-op) and an empty ``EnforceOverrides`` instead; this
    does the same for CLI processes, and only when nothing imported ``overrides`` already.
    """
    if sys.version_info >= (3, 12) or "overrides" in sys.modules:
        return

    def override(method: Callable[..., object]) -> Callable[..., object]:
        return method

    class EnforceOverrides:
        pass

    module = types.ModuleType("overrides", "no-op stand-in set by mmrec.cli (see _skip_override_checks)")
    module.override = module.overrides = module.final = override  # type: ignore[attr-defined]
    module.EnforceOverrides = EnforceOverrides  # type: ignore[attr-defined]
    sys.modules["overrides"] = module


def main(argv: list[str] | None = None) -> int:
    """Run one ``mmrec`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 on success, 1 for an mmrec or encoder error (printed as one line on stderr),
        130 when interrupted. Bad arguments exit with 2 from argparse.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _defer_namespace_client()
    _skip_override_checks()
    # Imported after parsing: `mmrec --help` and argument errors exit before any of this is needed.
    from encoders.errors import EncoderError
    from mmrec.errors import IngestProblemsError, MMRecError

    try:
        return _COMMANDS[args.command](args)
    except IngestProblemsError as e:
        # `--strict` failed: still show what was ingested, in the format asked for, before the error line.
        report = getattr(e, "report", None)
        if report is not None:
            print(json.dumps(report.to_dict(), indent=2) if getattr(args, "json", False) else report.format())
        print(f"mmrec: error: {e}", file=sys.stderr)
        return 1
    except (MMRecError, EncoderError) as e:
        print(f"mmrec: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mmrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
