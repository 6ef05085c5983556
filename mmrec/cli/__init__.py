"""The ``mmrec`` command line: a thin face over :class:`mmrec.engine.Engine`.

Only the parser and the command table are imported here, so ``mmrec --help`` stays instant; each command
loads what it needs.
"""

from mmrec.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
