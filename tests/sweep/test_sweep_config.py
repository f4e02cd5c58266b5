"""sweep: in mlproject.yml: the schema, the located checks and the spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sweep_project import SWEEP_YAML, write_sweep_project

from kmlc.config.loader import check_project, load_project
from kmlc.errors import ConfigError

CANDIDATES = SWEEP_YAML.replace("""  - name: predict""", """  - name: evaluate_copy
    func: sweep_nodes.evaluate
    inputs: [regressor, x_test, y_test, params:model.alpha]
    outputs: [metrics_copy, report_copy]
    namespace: ridge
  - name: predict""")


def _errors(tmp_path: Path, sweep: str, text: str = SWEEP_YAML) -> list[ConfigError]:
    head = text.split("sweep:\n")[0]
    path = write_sweep_project(tmp_path, head + sweep)
    result = check_project(path)
    assert result.spec is None
    return result.errors


def _line(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "mlproject.yml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_unknown_parameter_path_is_located_with_did_you_mean(tmp_path: Path) -> None:
    (err,) = _errors(tmp_path, """sweep:
  parameters:
    model.alpah: {values: [1, 2]}
  metric: r2
  direction: maximize
""")
    assert err.code == "KMLC530"
    assert (err.line, err.column) == (_line(tmp_path, "model.alpah"), 5)
    assert err.key_path == ("sweep", "parameters", "model.alpah")
    assert "parameter 'model.alpah' is not defined" in err.message
    assert err.hint == "did you mean 'model.alpha'?"


def test_a_range_on_a_non_numeric_parameter_is_refused(tmp_path: Path) -> None:
    text = SWEEP_YAML.replace("  model: {alpha: 1.0}", "  model: {alpha: 1.0, kind: ridge}")
    errors = _errors(tmp_path, """sweep:
  method: random
  trials: 4
  parameters:
    model.kind: {low: 1, high: 3}
  metric: r2
  direction: maximize
""", text)
    (err,) = errors
    assert err.code == "KMLC532"
    assert err.line == _line(tmp_path, "model.kind: {low")
    assert "a range needs a numeric parameter; 'model.kind' is str 'ridge'" in err.message


def test_unknown_metric_and_candidate_are_located(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """sweep:
  candidates: [rigde]
  metric: rows2
  direction: maximize
""", CANDIDATES.replace("  metrics: {type: mlflow.metrics}\n",
                       "  metrics: {type: mlflow.metrics, prefix: eval}\n"))
    by_code = {e.code: e for e in errors}
    assert set(by_code) == {"KMLC531", "KMLC535"}
    candidate = by_code["KMLC531"]
    assert candidate.line == _line(tmp_path, "candidates: [rigde]")
    assert candidate.key_path == ("sweep", "candidates", 0)
    assert candidate.hint == "did you mean 'ridge'?"
    metric = by_code["KMLC535"]
    assert metric.line == _line(tmp_path, "metric: rows2")
    assert "metric 'rows2' is not logged by any metric dataset" in metric.message
    assert metric.hint == "did you mean 'rows'?"


def test_grid_needs_values_and_random_needs_trials(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """sweep:
  parameters:
    model.alpha: {low: 0.1, high: 10, log: true}
  metric: r2
  direction: maximize
""")
    assert [e.code for e in errors] == ["KMLC533"]
    assert "method grid tries listed values" in errors[0].message
    errors = _errors(tmp_path, """sweep:
  method: random
  parameters:
    model.alpha: {low: 0, high: 10, log: true}
  metric: r2
  direction: maximize
""")
    assert sorted(e.code for e in errors) == ["KMLC532", "KMLC533"]


def test_schema_refuses_an_unknown_key_and_a_bad_direction(tmp_path: Path) -> None:
    errors = _errors(tmp_path, """sweep:
  parameters:
    model.alpha: {values: [1]}
  metric: r2
  direction: up
  trails: 3
""")
    assert len(errors) == 2
    assert {e.key_path[:2] for e in errors} == {("sweep", "direction"), ("sweep", "trails")}


def test_a_valid_sweep_becomes_the_spec(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path, SWEEP_YAML.replace("""  parameters:
    model.alpha: {values: [0.01, 1.0, 100.0]}""", """  method: random
  seed: 3
  trials: 5
  parallel: 2
  fail_fast: true
  parameters:
    model.alpha: {low: 0.001, high: 10, log: true}
    prep.sleep: {low: 0, high: 2}"""))
    sweep = load_project(path).sweep
    assert sweep is not None
    alpha, sleep = sweep.parameters
    assert (alpha.path, alpha.low, alpha.high, alpha.log, alpha.type) == (
        "model.alpha", 0.001, 10, True, "float")
    assert (sleep.type, sleep.log) == ("int", False)  # the parameter's own type
    assert (sweep.method, sweep.seed, sweep.trials, sweep.parallel, sweep.fail_fast) == (
        "random", 3, 5, 2, True)
    assert alpha.source is not None and alpha.source.key_path == (
        "sweep", "parameters", "model.alpha")


def test_validate_with_a_sweep_imports_no_mlflow(tmp_path: Path) -> None:
    path = write_sweep_project(tmp_path)
    script = ("import sys\nfrom kmlc.cli import main\n"
              "try:\n    main(['validate', '-f', sys.argv[1]])\nexcept SystemExit as e:\n"
              "    assert e.code == 0, e.code\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'optuna')))")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("method", ["grid", "random"])
def test_cli_validate_reports_sweep_errors(tmp_path: Path, method: str) -> None:
    from click.testing import CliRunner

    from kmlc.cli import main

    head = SWEEP_YAML.split("sweep:\n")[0]
    path = write_sweep_project(tmp_path, head + f"""sweep:
  method: {method}
  trials: 2
  parameters:
    model.alpah: {{values: [1, 2]}}
  metric: r2
  direction: maximize
""")
    result = CliRunner().invoke(main, ["validate", "-f", str(path)])
    assert result.exit_code == 1
    line = _line(tmp_path, "model.alpah")
    assert (f"mlproject.yml:{line}:5: error: sweep.parameters.model.alpah: parameter "
            "'model.alpah' is not defined in `parameters`") in result.output


def _diabetes(tmp_path: Path, change: tuple[str, str] | None = None) -> Path:
    """examples/diabetes (its file and nodes), with one text replacement."""
    import shutil

    example = Path(__file__).resolve().parents[2] / "examples" / "diabetes"
    shutil.copy(example / "diabetes_nodes.py", tmp_path)
    text = (example / "mlproject.yml").read_text()
    if change is not None:
        assert change[0] in text
        text = text.replace(*change)
    path = tmp_path / "mlproject.yml"
    path.write_text(text)
    return path


def test_a_model_bound_per_candidate_is_checked_once_per_candidate(tmp_path: Path) -> None:
    # each candidate has its copy of `predict`: the model is bound per candidate, valid
    result = check_project(_diabetes(tmp_path))
    assert result.errors == [] and result.spec is not None
    # without candidates, the same nodes are one inference pipeline with two outputs
    result = check_project(_diabetes(tmp_path, ("  candidates: [ridge, forest]\n", "")))
    assert [e.message for e in result.errors] == [
        "the inference pipeline must have exactly one free output, found: "
        "forest.predictions, ridge.predictions"]
    # one candidate's binding broken: said so, located at its reader; the other is fine
    result = check_project(_diabetes(tmp_path, (
        "    namespace: forest\n    nodes: [fit, evaluate, predict]\n",
        "    namespace: forest\n    nodes: [fit, evaluate, predict]\n"
        "    outputs: {regressor: forest_model}\n")))
    (err,) = result.errors
    assert err.code == "KMLC504"
    assert err.message == ("candidate 'forest': inference input 'forest_model' must be "
                           "persisted to a file dataset to be packed into the model")
    assert err.key_path == ("nodes", 4, "inputs")
    assert err.line == _line(tmp_path, "inputs: [regressor, features]")
