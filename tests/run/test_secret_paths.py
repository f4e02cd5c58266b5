"""A secret goes nowhere: planted in every string field of the schema, one field each.

The fields come from the JSON Schema (``schemas/mlproject.schema.json``): every value
that may be a string (and every open mapping, such as ``parameters`` or ``load_args``,
gets a new key) is a place where a template, hence ``env('X', secret=true)``, can go.
Each field is planted in the mini project with a secret of its own, used as it is or
through a filter, a slice or a concatenation (the value computed from it is a secret
too, and searched for as well). ``kmlc validate``
either refuses it with a located error (and the secret in no message), or accepts it;
the accepted fields that cannot interact are planted together in one project, which is
validated, trained, exported (``export-model -o``) and predicted with, as real processes;
then every byte and every file name under the project folder and every command's output
are searched for each secret. ``KMLC_SECRET_REPORT=path`` writes the outcome per field.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from mini_project import MINI_YAML, kmlc_exe, write_mini

import kmlc.cli
import kmlc.cli.mlflow_ui
from kmlc.cli import main
from kmlc.config.schema import schema_text

# ------------------------------------------------------------------ fields of the schema


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _takes_string(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return (kind == "string" or (isinstance(kind, list) and "string" in kind)
            or isinstance(node.get("const"), str)
            or any(isinstance(v, str) for v in node.get("enum", ())))


def _is_open(node: dict[str, Any]) -> bool:
    """A mapping of free keys whose values may be strings (parameters, load_args, tags)."""
    extra = node.get("additionalProperties", True)
    return (node.get("type") == "object" and not node.get("properties")
            and (extra is True or (isinstance(extra, dict) and _takes_string(extra))))


def schema_fields(node: dict[str, Any], root: dict[str, Any], path: str = "",
                  branch: str = "") -> Iterator[str]:
    """Field patterns: ``a.b`` keys, ``[]`` list items, ``*`` free keys, ``<type>`` the
    dataset branch of ``allOf``/``if``/``then``."""
    node = _resolve(node, root)
    if _takes_string(node) or _is_open(node):
        yield path + (".*" if _is_open(node) else "")
    for alt in (*node.get("oneOf", ()), *node.get("anyOf", ())):
        yield from schema_fields(alt, root, path, branch)
    for name, sub in node.get("properties", {}).items():
        if sub is True:
            continue
        yield from schema_fields(sub, root, f"{path}.{name}" if path else name, branch)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from schema_fields(extra, root, f"{path}.*", branch)
    if isinstance(node.get("items"), dict):
        yield from schema_fields(node["items"], root, f"{path}[]", branch)
    for part in node.get("allOf", ()):
        kind = part.get("if", {}).get("properties", {}).get("type", {})
        label = kind.get("const") or "file"
        yield from schema_fields(part.get("then", {}), root, f"{path}<{label}>", branch)


def all_fields() -> list[str]:
    schema = json.loads(schema_text())
    return sorted(set(schema_fields(schema, schema)))


# ------------------------------------------------------------------ planting one field

# the mini project's datasets and nodes that show each branch or shape best
_DATASET = {"mlflow.metric": ["accuracy"], "mlflow.metric_history": ["loss"],
            "mlflow.metrics": ["scores"], "mlflow.model": ["sk_model"]}
# file datasets: the model's input, a packed artifact, a tracked artifact, a plain output
_FILE_DATASETS = {"load_args": ["instances", "classifier"], "save_args": ["predictions"],
                  "credentials": ["instances"]}
# an argument each dataset accepts as any string (so that the run is real)
_ARGUMENT = {("instances", "load_args"): "na_values", ("classifier", "load_args"): "encoding",
             ("predictions", "save_args"): "na_rep"}
_NODE = {"inputs": "clean", "inputs[]": "evaluate", "inputs.*": "fit", "outputs": "clean",
         "outputs[]": "fit", "outputs.*": "check"}
_URIS = ("tracking.uri", "tracking.registry_uri")
# not a field of the schema: a value of the credentials file a dataset names
CREDENTIALS = "credentials file (datasets.instances.credentials: db)"
# fields left out, and why: not rendered (environments are merged before rendering; their
# values are the fields above)
SKIPPED = {"environments.*.*": "an environment's values are the fields above, once merged"}


# (expression of the secret, the value it computes); every derived value is a secret too
_FORMS: tuple[tuple[str, Any], ...] = (
    ("{}", lambda s: s),
    ("{} | upper", str.upper),
    ("{}[::-1]", lambda s: s[::-1]),
    ("'k-' ~ {}[2:]", lambda s: "k-" + s[2:]),
)


@dataclass
class Planting:
    field: str
    target: str  # where in the mini project
    index: int
    secret: str = ""
    outcome: str = ""
    codes: list[str] = field(default_factory=list)

    @property
    def env(self) -> str:
        return f"KMLC_SECRET_{self.index:03d}"

    @property
    def form(self) -> int:
        """How the field computes its value from the secret: as it is, a filter, a slice,
        a slice in a concatenation (in turn, field by field)."""
        return self.index % len(_FORMS)

    @property
    def template(self) -> str:
        secret = "{{ " + _FORMS[self.form][0].format(f"env('{self.env}', secret=true)") + " }}"
        # a store's address holds a secret as its password (an unreachable server)
        return f"http://kmlc:{secret}@127.0.0.1:9" if self.field in _URIS else secret

    @property
    def searched(self) -> tuple[str, ...]:
        """What must be nowhere: the secret and the value the field computed from it."""
        if self.field == CREDENTIALS:
            return (self.secret,)
        return (self.secret, _FORMS[self.form][1](self.secret))


def _set(data: dict[str, Any], keys: list[Any], value: Any) -> None:
    for key in keys[:-1]:
        data = data[key] if isinstance(data, list) else data.setdefault(key, {})
    data[keys[-1]] = value


def plantings(fields: list[str]) -> list[tuple[str, list[Any], str]]:
    """``(field, key path in the mini document, value shape)`` for each field."""
    out: list[tuple[str, list[Any], str]] = []
    for name in fields:
        if name in SKIPPED:
            continue
        dataset_field = re.fullmatch(r"datasets\.\*(?:<(?P<label>[^>]+)>)?\.(?P<rest>.+)", name)
        if dataset_field:
            label, rest = dataset_field["label"], dataset_field["rest"].split(".")
            names = (_FILE_DATASETS.get(rest[0], ["report"]) if label in (None, "file")
                     else _DATASET[label])
            for dataset in names:
                keys: list[Any] = ["datasets", dataset, *rest]
                if keys[-1] == "*":
                    keys[-1] = _ARGUMENT.get((dataset, rest[0]), "planted")
                out.append((name, keys, "value"))
            continue
        parts = name.replace("[]", ".[]").split(".")
        if parts[0] == "nodes":
            shape = ".".join(parts[2:]).replace(".[]", "[]")
            node = _NODE.get(shape, "predict")
            keys = ["nodes", node, parts[2]]
            value = "list" if shape.endswith("[]") else ("map" if shape.endswith("*") else
                                                        "value")
            out.append((name, keys, value))
            continue
        keys = [p for p in parts if p != "[]"]
        value = "list" if parts[-1] == "[]" else "value"
        if keys[-1] == "*":
            keys[-1] = "planted"
        if keys[0] == "pipelines":
            keys[1] = "planted"
        out.append((name, keys, value))
    return out


def planted_text(items: list[Planting], keys_of: dict[int, tuple[list[Any], str]]) -> str:
    data = yaml.safe_load(MINI_YAML)
    nodes = {n["name"]: i for i, n in enumerate(data["nodes"])}
    for item in items:
        if item.field == CREDENTIALS:
            data["credentials"] = "creds.yml"
            data["datasets"]["instances"]["credentials"] = "db"
            continue
        keys, shape = keys_of[item.index]
        keys = [nodes[k] if keys[0] == "nodes" and j == 1 else k for j, k in enumerate(keys)]
        value: Any = {"list": [item.template], "map": {"planted": item.template}}.get(
            shape, item.template)
        _set(data, keys, value)
    return yaml.safe_dump(data, sort_keys=False)


# ------------------------------------------------------------------ the test


def _env(items: list[Planting]) -> dict[str, str]:
    return {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "true",
            **{i.env: i.secret for i in items}}


def _kmlc(root: Path, items: list[Planting], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kmlc_exe(), *args], cwd=root, env=_env(items), capture_output=True,
                          text=True, timeout=600)


def _leaks(root: Path, outputs: str, secret: str) -> list[str]:
    found = ["output of a command"] if secret in outputs else []
    for file in sorted(root.rglob("*")):
        rel = str(file.relative_to(root))
        if rel == "creds.yml":
            continue
        if secret in rel:
            found.append(f"file name {rel}")
        elif file.is_file() and secret.encode() in file.read_bytes():
            found.append(rel)
    return found


def _group_run(root: Path, items: list[Planting], keys_of: dict[int, tuple[list[Any], str]]
               ) -> tuple[str, list[str]]:
    """Validate, train, export and predict with ``items`` planted; all outputs and steps."""
    write_mini(root, planted_text(items, keys_of))
    for item in items:
        if item.field == CREDENTIALS:  # the one file that holds it (and is not searched)
            (root / "creds.yml").write_text(f"db: {{password: {item.secret}}}\n")
    outputs, steps = "", []
    for name, args in (("validate", ["validate"]), ("run training", ["run", "training"]),
                       ("export-model -o", ["export-model", "--latest", "-o", "exported"]),
                       ("predict", ["predict", "-m", "exported", "-i",
                                    "data/01_raw/instances.csv", "-o", "predicted.csv"])):
        done = _kmlc(root, items, *args)
        outputs += done.stdout + done.stderr
        steps.append(f"{name}: exit {done.returncode}")
        assert "Traceback" not in done.stderr, done.stderr
    return outputs, steps


@pytest.mark.slow
def test_a_planted_secret_goes_nowhere(tmp_path: Path) -> None:
    fields = all_fields()
    plan = plantings(fields)
    items = [Planting(name, ".".join(map(str, keys)), i, secret=f"s3cr3t-{i:03d}-Zq7")
             for i, (name, keys, _) in enumerate(plan)]
    items.append(Planting(CREDENTIALS, "creds.yml: db.password", len(items),
                          secret="s3cr3t-cred-Zq7"))
    keys_of = {i: (keys, shape) for i, (_, keys, shape) in enumerate(plan)}
    assert {f for f in fields if f not in SKIPPED} | {CREDENTIALS} == {i.field for i in items}
    assert len(items) > 40

    accepted: list[Planting] = []
    runner = CliRunner()
    root = tmp_path / "validate"
    for item in items:
        if item.field == CREDENTIALS:
            accepted.append(item)
            continue
        write_mini(root, planted_text([item], keys_of))
        env = {item.env: item.secret}
        text = runner.invoke(main, ["validate", "-f", str(root / "mlproject.yml")], env=env)
        js = runner.invoke(main, ["validate", "-f", str(root / "mlproject.yml"), "--format",
                                  "json"], env=env)
        for secret in item.searched:
            assert secret not in text.output + js.output, (item.field, text.output)
        assert text.exit_code == js.exit_code, item.field
        if text.exit_code == 0:
            accepted.append(item)
            continue
        errors = json.loads(js.output)
        assert errors and all(e["line"] > 0 and e["column"] > 0 for e in errors), item.field
        assert re.search(r":\d+:\d+: error: ", text.output), item.field
        item.codes = sorted({e["code"] for e in errors})
        item.outcome = "refused by validate"
        assert [leak for secret in item.searched for leak in _leaks(root, "", secret)] == []

    # the tracking store's address: a group of its own (an unreachable one stops the run)
    groups = [[i for i in accepted if i.field != "tracking.uri"]]
    groups += [[i] for i in accepted if i not in groups[0]]
    for number, group in enumerate(groups):
        project = tmp_path / f"group{number}"
        outputs, steps = _group_run(project, group, keys_of)
        for item in group:
            leaks = [leak for secret in item.searched
                     for leak in _leaks(project, outputs, secret)]
            assert leaks == [], (item.field, leaks)
            item.outcome = f"accepted; absent everywhere ({', '.join(steps)})"

    report = os.environ.get("KMLC_SECRET_REPORT")
    if report:
        Path(report).write_text(json.dumps(
            [{"field": i.field, "planted at": i.target, "outcome": i.outcome,
              "codes": i.codes} for i in items], indent=2))
    # the accepted ones were used for real: the first group trained and predicted, and
    # the store holds the masked values
    assert groups[0] and "run training: exit 0" in groups[0][0].outcome, groups[0][0].outcome
    assert "predict: exit 0" in groups[0][0].outcome
    run = _only_run(tmp_path / "group0")
    # fields where a secret is masked, never refused: were one refused, its leak checks
    # above would vanish with it, so they must have been planted in the run
    accepted_fields = {i.field for i in groups[0]}
    assert {"tracking.tags.*", "parameters.*", "tracking.run_name", CREDENTIALS} <= \
        accepted_fields, sorted(accepted_fields)
    assert run.data.tags["planted"] == "***"
    # no node reads parameters.planted: it is in the logged file only
    [logged] = (tmp_path / "group0" / "mlartifacts").rglob("mlproject.yml")
    assert yaml.safe_load(logged.read_text())["parameters"]["planted"] == "***"
    assert run.info.run_name == "***"


def _only_run(root: Path) -> Any:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mini")
    [run] = client.search_runs([experiment.experiment_id])
    return run


# ------------------------------------------------------------------ a store's password


PASSWORD = "pw-Zq7-s3cr3t"


def _mini_with_note(root: Path) -> Path:
    return write_mini(root, MINI_YAML.replace("  threshold: 0.5\n",
                                              "  threshold: 0.5\n  note: plain\n"))


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run", "training"], ["export-model", "--latest", "-o", "m"]])
def test_a_store_password_is_never_printed(tmp_path: Path, command: list[str]) -> None:
    """An unreachable server's error names the server, not its password."""
    root = tmp_path / "proj"
    _mini_with_note(root)
    done = _kmlc(root, [], *command, "--tracking-uri", f"http://kmlc:{PASSWORD}@127.0.0.1:9")
    assert done.returncode == 1
    assert "unreachable" in done.stderr and "http://***@127.0.0.1:9" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert _leaks(root, "", PASSWORD) == []


@pytest.mark.slow
def test_a_password_in_the_command_line_is_not_in_the_command_tag(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _mini_with_note(root)
    done = _kmlc(root, [], "run", "training", "--params",
                 f"note=https://kmlc:{PASSWORD}@example.org/x")
    assert done.returncode == 0, done.stderr
    run = _only_run(root)
    assert run.data.tags["kmlc.command"] == (
        "kmlc run training --params note=https://***@example.org/x")
    assert _leaks(root, done.stdout + done.stderr, PASSWORD) == []


def test_kmlc_ui_prints_the_store_without_its_password(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = _mini_with_note(tmp_path / "proj")
    started: list[list[str]] = []

    def serve(argv: list[str], host: str, port: int, announce) -> int:
        started.append(argv)  # the MLflow UI itself is not started: it answers at once
        announce(f"http://{host}:{port}")
        return 0

    monkeypatch.setattr(kmlc.cli.mlflow_ui, "serve_ui", serve)
    uri = f"http://kmlc:{PASSWORD}@127.0.0.1:9"
    result = CliRunner().invoke(main, ["ui", "-f", str(path), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert "(store: http://***@127.0.0.1:9)" in result.output and PASSWORD not in result.output
    assert uri in started[0]  # MLflow itself gets the real address
