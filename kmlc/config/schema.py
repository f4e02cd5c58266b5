"""Stage 4, schema: the JSON Schema check, with messages rewritten for people.

Every error of ``Draft202012Validator.iter_errors`` becomes one ``ConfigError`` at
the key (or value) it is about: unknown keys get the closest valid key, enum errors
list the valid values, ``oneOf`` failures are reduced to the relevant branch with
``best_match``. The schema is package data, loaded once.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from kmlc.config.kedro_forms import interpolation_problem, kedro_key_hint
from kmlc.config.source import Document, KeyPath
from kmlc.errors import ConfigError, did_you_mean

__all__ = ["load_schema", "schema_errors", "schema_text"]

_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null",
}


def schema_text() -> str:
    """The JSON Schema of ``mlproject.yml``, as shipped in the package."""
    return resources.files("kmlc.schemas").joinpath("mlproject.schema.json").read_text("utf-8")


@functools.cache
def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def schema_errors(doc: Document) -> list[ConfigError]:
    """Validate ``doc.data``; return one readable ``ConfigError`` per problem."""
    out: list[ConfigError] = []
    seen: set[tuple[KeyPath, str]] = set()
    for error in _validator().iter_errors(doc.data):
        for converted in _convert(doc, error):
            marker = (converted.key_path, converted.message)
            if marker not in seen:
                seen.add(marker)
                out.append(converted)
    return out


def _found(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "...\""


def _expected_types(schema_type: Any) -> str:
    types = schema_type if isinstance(schema_type, list) else [schema_type]
    return " or ".join(str(_TYPE_NAMES.get(t, t)) for t in types)


def _convert(doc: Document, error: ValidationError) -> list[ConfigError]:
    path: KeyPath = tuple(error.absolute_path)
    validator = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance

    if validator == "additionalProperties" and isinstance(instance, dict):
        known = sorted(schema.get("properties", {}))
        extras = [k for k in instance if k not in schema.get("properties", {})]
        results = []
        section = {0: "", 2: {"nodes": "node", "pipelines": "pipeline"}.get(
            str(path[0]) if path else "", "")}.get(len(path), "")
        for key in extras:
            kedro = kedro_key_hint(section, key)
            if kedro:
                feature, way = kedro.split(": ", 1)
                results.append(doc.error(f"'{key}' is {feature}, which kmlc does not take here",
                                         (*path, key), key=True, code="KMLC207", hint=way))
                continue
            hint = did_you_mean(key, known, f"valid keys: {', '.join(known)}" if known else None)
            results.append(doc.error(f"unknown key '{key}'", (*path, key), key=True,
                                     code="KMLC201", hint=hint))
        return results
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(error.message)
        return [doc.error(f"missing required key '{missing}'", path, key=True, code="KMLC202")]
    if validator == "dependentRequired":
        parts = str(error.message).split("'")
        needed, key = (parts[1], parts[3]) if len(parts) > 3 else ("", "")
        return [doc.error(f"missing required key '{needed}': '{key}' needs it", path, key=True,
                          code="KMLC202",
                          hint=f"'{key}' maps names of the copies a `{needed}` makes, as in "
                          f"Kedro's pipeline(..., {needed}=..., {key}=...)")]
    if validator in ("oneOf", "anyOf") and error.context:
        return _convert_branches(doc, error, path)
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        return [_bad_name(doc, error, path, instance)]
    if validator == "type":
        return [doc.error(
            f"expected {_expected_types(error.validator_value)}, found {_found(instance)}",
            path, code="KMLC203")]
    if validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        hint = did_you_mean(str(instance), error.validator_value)
        return [doc.error(f"{_found(instance)} is not one of: {options}", path,
                          code="KMLC204", hint=hint)]
    if validator == "const":
        return [doc.error(f"expected {json.dumps(error.validator_value)}, found {_found(instance)}",
                          path, code="KMLC204")]
    if validator == "pattern" and schema.get("patternErrorMessage"):
        # the schema's own words (editors show them too), not the regular expression
        return [doc.error(f"{_found(instance)} is not valid: {schema['patternErrorMessage']}",
                          path, code="KMLC204")]
    if validator == "pattern":
        what = schema.get("description", "").rstrip(".")
        return [doc.error(f"{_found(instance)} is not a valid value"
                          + (f" for: {what}" if what else ""), path, code="KMLC204",
                          hint=f"it must match {error.validator_value}")]
    if validator in ("minItems", "minProperties", "minLength"):
        return [doc.error(f"{_found(instance)} must not be empty", path, code="KMLC205")]
    if validator in ("minimum", "maximum"):
        return [doc.error(f"{_found(instance)} is out of range ({validator} "
                          f"{error.validator_value})", path, code="KMLC205")]
    return [doc.error(error.message, path, code="KMLC205")]


_NAME_HINTS = {
    "datasets": "names start with a letter or _, and use letters, digits, _ . or -; "
                "'params:' and 'parameters' are reserved; Kedro's factory patterns "
                "(\"{name}_csv\") and transcoding (model_input@pandas) are allowed",
    "pipelines": "names start with a letter or _, and use letters, digits, _ or -",
}


def _bad_name(doc: Document, error: ValidationError, path: KeyPath, name: str) -> ConfigError:
    """A ``propertyNames`` failure, located at the offending key itself."""
    section = path[-1] if path else ""
    problem = interpolation_problem(name)
    if problem:
        return doc.error(problem[0], (*path, name), key=True, code="KMLC206", hint=problem[1])
    hint = _NAME_HINTS.get(str(section))
    if hint is None and error.validator == "pattern":
        hint = f"it must match {error.validator_value}"
    return doc.error(f"'{name}' is not a valid name here", (*path, name), key=True,
                     code="KMLC204", hint=hint)


def _branch_of(error: ValidationError) -> Any:
    return error.relative_schema_path[0] if error.relative_schema_path else None


def _convert_branches(doc: Document, error: ValidationError, path: KeyPath) -> list[ConfigError]:
    context = list(error.context or [])
    # a branch whose type (or const) does not fit the value says nothing useful when another
    # branch does fit: keep only the errors of the branches the value could have meant
    mismatched = {_branch_of(e) for e in context
                  if not e.relative_path and e.validator in ("type", "const")}
    fitting = [e for e in context if _branch_of(e) not in mismatched]
    if fitting and len({_branch_of(e) for e in fitting}) == 1:
        return [c for e in fitting for c in _convert(doc, e)]  # every problem of that branch
    if fitting:
        chosen = best_match(fitting)
        if chosen is None:
            return [doc.error(error.message, path, code="KMLC205")]
        return _convert(doc, chosen)
    shallow = [e for e in context if not e.relative_path]
    if shallow and all(e.validator in ("type", "const") for e in shallow) and len(shallow) == len(
        {id(s) for s in (error.schema.get(error.validator) or [])}
    ):
        wanted = []
        for branch in error.schema[error.validator]:
            if "const" in branch:
                wanted.append(json.dumps(branch["const"]))
            elif "type" in branch:
                wanted.append(_expected_types(branch["type"]))
        return [doc.error(f"expected {' or '.join(wanted)}, found {_found(error.instance)}",
                          path, code="KMLC203")]
    chosen = best_match(context)
    if chosen is None:
        return [doc.error(error.message, path, code="KMLC205")]
    return _convert(doc, chosen)
