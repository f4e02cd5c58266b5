"""The command line: a thin layer of click over the Python API.

``params`` declares every shared option once; ``main`` holds the commands, each of which
parses, calls one function of the API and prints with ``output`` (``KmlcError``: one line
per error and exit code 1). Heavy machinery is imported inside each command, so
``kmlc validate`` never imports MLflow.
"""

from __future__ import annotations

from kmlc.cli.main import main

__all__ = ["main"]
