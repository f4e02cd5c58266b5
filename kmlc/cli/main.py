"""The ``kmlc`` group: every command, each in the module of its kind.

Each command parses its options (declared once, in ``params``), calls a function of the
Python API and prints its result or its error (``output``). It imports its machinery
inside the function, so ``kmlc validate`` never imports MLflow and ``kmlc run`` refuses a
mistake of the file or of its options before Kedro or MLflow is imported.
"""

from __future__ import annotations

import click

from kmlc.cli import check, model, project, run
from kmlc.version import __version__

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmlc")
def main() -> None:
    """kmlc: machine-learning projects on Kedro and MLflow from one mlproject.yml."""


for command in (check.validate, check.plan, check.graph, model.promote, check.schema,
                run.run, run.sweep_cmd, project.cache, project.ui, model.export_model_cmd,
                model.predict, project.import_kedro_cmd, project.init_cmd):
    main.add_command(command)
