"""A ``lambda`` node, carried over: its source copied into a module kmlc can name.

Kedro builds a node from any callable; ``mlproject.yml`` names a function by its module
path, which a ``lambda`` has none of. A lambda that needs nothing from where it was
written (no closure, no default values, no global name but Python's builtins) is copied,
as its own text, into a plain ``def`` in a module the import writes beside the file
(``kmlc_imported/kedro_lambdas.py``); any other lambda is listed as not converted.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import re
from pathlib import Path
from types import FunctionType
from typing import Any

__all__ = ["LAMBDA_DIR", "LAMBDA_MODULE", "function_name", "lambda_def", "lambda_module_text"]

LAMBDA_DIR = "kmlc_imported"  # beside the written mlproject.yml, added to `code:`
LAMBDA_MODULE = "kedro_lambdas"


def _find(func: FunctionType) -> ast.Lambda | str:
    """The ``lambda`` expression in its file that compiles to ``func``'s code."""
    try:
        file = inspect.getsourcefile(func)
        source = Path(file).read_text("utf-8") if file else None
    except (OSError, TypeError, UnicodeDecodeError):
        source = None
    if source is None:
        return "its source file cannot be read"
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "its source file does not parse"
    code = func.__code__
    found = []
    for candidate in ast.walk(tree):
        if isinstance(candidate, ast.Lambda) and candidate.lineno == code.co_firstlineno:
            compiled = compile(ast.Expression(candidate), "<lambda>", "eval")
            inner = next((c for c in compiled.co_consts if hasattr(c, "co_code")), None)
            # (its bytecode may differ: the names it reads and binds tell lambdas apart)
            if inner is not None and (inner.co_names, inner.co_varnames, inner.co_argcount) \
                    == (code.co_names, code.co_varnames, code.co_argcount):
                found.append(candidate)
    if len(found) != 1:
        return "its source cannot be told apart from the other lambdas on its line"
    return found[0]


def lambda_def(func: Any, name: str) -> str:
    """``def name(...)`` with ``func``'s own arguments and body, or why it cannot be.

    Raises ``ValueError`` with the reason when the lambda needs its surroundings."""
    if not isinstance(func, FunctionType) or func.__name__ != "<lambda>":
        raise ValueError("it is not a lambda")
    code = func.__code__
    if code.co_freevars:
        raise ValueError(f"it reads {', '.join(code.co_freevars)} from the function that "
                         "built it")
    if func.__defaults__ or func.__kwdefaults__:
        raise ValueError("its arguments have default values")
    found = _find(func)
    if isinstance(found, str):
        raise ValueError(found)
    names = sorted(n for n in _free_names(found)
                   if not hasattr(builtins, n) or n in func.__globals__)
    if names:
        raise ValueError(f"it reads {', '.join(names)} from its module")
    return f"def {name}({ast.unparse(found.args)}):\n    return {ast.unparse(found.body)}\n"


def _free_names(tree: ast.Lambda) -> set[str]:
    """The names the lambda reads that neither its arguments nor its body bind."""
    args = tree.args
    bound = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
    bound |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    loads: set[str] = set()
    stores: set[str] = set()
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
        elif isinstance(node, ast.Lambda):
            inner = node.args
            stores |= {a.arg for a in (*inner.posonlyargs, *inner.args, *inner.kwonlyargs)}
    return loads - bound - stores


def function_name(node_name: str) -> str:
    """A Python name for the node's copied lambda (``ns.<lambda>__2de1`` -> ``ns_lambda__2de1``)."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", node_name.replace("<lambda>", "lambda")).strip("_")
    return name if name and not name[0].isdigit() else f"node_{name}"


def lambda_module_text(defs: dict[str, tuple[str, str]]) -> str:
    """The module: each function with the place it was copied from."""
    out = ['"""The Kedro project\'s lambda nodes, copied by `kmlc import-kedro` from their '
           'source.\n\nChange them in the project\'s pipeline code and import again: this '
           'file is rewritten.\n"""\n']
    for name in sorted(defs):
        text, place = defs[name]
        out.append(f"\n\n# {place}\n{text}")
    return "".join(out)
