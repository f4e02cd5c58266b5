"""Stage 3, render: jinja2 expressions in string values, one value at a time.

Rendering happens after parsing, value by value, so every line number stays exact.
The environment is a ``SandboxedEnvironment`` with ``StrictUndefined``: an unknown
name or an attempt to reach ``__class__`` is a ``ConfigError`` on that value's line.
The sandbox is also bounded (``_LimitedSandbox``): no value may grow past ``MAX_SIZE``
and each value has a budget of work, so ``{{ 'a' * 10**10 }}`` is an error, not a hang;
the whole file has a budget too (``MAX_TOTAL`` characters rendered, ``MAX_SECONDS``), and
the value where it runs out is the error.
A value computed from a secret (``env(..., secret=true)`` called while rendering it, a
read of a secret parameter, the secret's text in it) is a secret: its key path is
recorded and its text (at least ``MIN_DERIVED`` long) joins the secrets to mask.
A value that is a single ``{{ expression }}`` takes the YAML type of its result; null,
booleans and numbers are kept as the expression computed them.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range

from kmlc.config.secrets import Secrets
from kmlc.config.source import UNRENDERED, Document, KeyPath, is_template, load_value
from kmlc.errors import ConfigError, ConfigErrors

__all__ = ["RenderResult", "render_document"]

_SINGLE = re.compile(r"^\s*\{\{(?:(?!\}\}).)*\}\}\s*$", re.S)
_MISSING = object()

#: the largest value a template may build: characters and items, nested ones included;
#: also the widest a printed number or padded string may be
MAX_SIZE = 1_000_000
#: the largest integer (in bits) ``*`` and ``**`` may produce
MAX_INT_BITS = 4096
#: what one value may spend in all: characters printed, calls, and items of every ``range``
MAX_WORK = 2_000_000
#: what all the values of one file may render in all (characters and items)
MAX_TOTAL = 20_000_000
#: how long rendering one file may take, in seconds
MAX_SECONDS = 30.0
#: a value computed from a secret is masked as text when at least this long (shorter: by
#: its key only, or every "1" of every output would be masked)
MIN_DERIVED = 4
#: a call (of a macro, a global, a method) costs as much work as printing this many characters
_CALL_COST = 10
_FLAGS = r"%[#0\- +]*"
_WIDE_FORMAT = re.compile(
    rf"{_FLAGS}\d{{7,}}|{_FLAGS}\d*\.\d{{7,}}|\{{[^{{}}]*:[^{{}}]*\d{{7,}}")
_DYNAMIC_FORMAT = re.compile(rf"{_FLAGS}\*|{_FLAGS}\d*\.\*|\{{[^{{}}]*:[^{{}}]*\{{")
_SIZED = (str, bytes, list, tuple)
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class _TooBig(SecurityError):
    """A template operation would exceed the sandbox's size limits."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _weight(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters and items of ``value``, nested ones included; stops counting past ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
        else:
            total += 1
    return total


def _check_weight(value: Any, what: str) -> Any:
    if _weight(value) > MAX_SIZE:
        raise _TooBig(f"{what} would be over the limit of {MAX_SIZE:,} characters or items")
    return value


def _check_numbers(values: Any, what: str) -> None:
    for value in values:
        if _is_int(value) and abs(value) > MAX_SIZE:
            raise _TooBig(f"{what}: {value} is over the limit of {MAX_SIZE:,}")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``**``, ``+`` and ``%`` whose result would be huge, before computing it."""
    ints = _is_int(left) and _is_int(right)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            raise _TooBig(f"the power is over the limit of {MAX_INT_BITS} bits")
    elif operator == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _TooBig(f"the product is over the limit of {MAX_INT_BITS} bits")
        for seq, times in ((left, right), (right, left)):
            if (isinstance(seq, _SIZED) and _is_int(times) and times > 1
                    and (len(seq) * times > MAX_SIZE or _weight(seq) * times > MAX_SIZE)):
                raise _TooBig(f"the repeated sequence would be over the limit of "
                              f"{MAX_SIZE:,} characters or items")
    elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        if _weight(left) + _weight(right) > MAX_SIZE:
            raise _TooBig(f"the concatenation would be over the limit of {MAX_SIZE:,} "
                          "characters or items")
    elif operator == "%" and isinstance(left, str):
        _check_format(left, right)


def _check_format(fmt: str, args: Any) -> None:
    """Refuse a ``%`` or ``str.format`` template with a huge width, precision or result."""
    if _WIDE_FORMAT.search(fmt):
        raise _TooBig(f"a format width or precision is over the limit of {MAX_SIZE:,}")
    values = list(args) if isinstance(args, tuple | list) else [args]
    for value in list(values):
        if isinstance(value, dict):
            values.extend(value.values())
    if _DYNAMIC_FORMAT.search(fmt):
        _check_numbers(values, "a format width or precision")
    _check_weight([fmt, *values], "the formatted string")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        times = text.count(old) if old else len(text) + 1
        if _is_int(count) and count >= 0:
            times = min(times, count)
        if len(text) + times * max(0, len(new) - len(old)) > MAX_SIZE:
            raise _TooBig(f"the replaced string would be over the limit of {MAX_SIZE:,} "
                          "characters")


def _bounded_iter(items: Iterator[Any]) -> Iterator[Any]:
    """Pass the items of a lazy iterable (map, select, ...) on until they weigh too much."""
    total = 0
    for item in items:
        total += _weight(item) + 1
        if total > MAX_SIZE:
            raise _TooBig(f"the sequence would be over the limit of {MAX_SIZE:,} "
                          "characters or items")
        yield item


def _guard_args(args: tuple[Any, ...], kwargs: dict[str, Any],
                what: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Check the size of call arguments; lazy iterables are bounded as they are consumed."""
    def guard(value: Any) -> Any:
        if isinstance(value, Iterator) and not isinstance(value, _SIZED):
            return _bounded_iter(value)
        return _check_weight(value, what)

    return tuple(guard(a) for a in args), {k: guard(v) for k, v in kwargs.items()}


def _guard_result(value: Any, what: str) -> Any:
    if isinstance(value, Iterator) and not isinstance(value, _SIZED):
        return _bounded_iter(value)
    return _check_weight(value, what)


def _bounded_filter(func: Any, name: str) -> Any:
    """``func`` with its arguments and result checked; width-like numbers are capped."""
    pass_arg = getattr(func, "jinja_pass_arg", None)

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        head, rest = (args[:1], args[1:]) if pass_arg is not None else ((), args)
        rest, kwargs = _guard_args(rest, kwargs, f"the input of filter {name}")
        if name in ("center", "indent", "truncate", "wordwrap"):
            _check_numbers([*rest[1:], *kwargs.values()], f"filter {name}")
        if name == "indent" and rest:
            width = rest[1] if len(rest) > 1 else kwargs.get("width", 4)
            width = len(width) if isinstance(width, str) else width
            if _is_int(width) and str(rest[0]).count("\n") * width > MAX_SIZE:
                raise _TooBig(f"the indented string would be over the limit of {MAX_SIZE:,} "
                              "characters")
        elif name == "replace":
            _check_replace(*rest[:4])
        elif name == "format" and rest:
            _check_format(str(rest[0]), (*rest[1:], kwargs))
        return _guard_result(func(*head, *rest, **kwargs), f"the result of filter {name}")

    return bounded


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` (string concatenation) checked like ``+``."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _LimitedSandbox(ImmutableSandboxedEnvironment):
    """The Jinja sandbox with bounds on what one value may build.

    Jinja's sandbox stops attribute escapes and caps each ``range``, but lets
    ``'a' * 10**10`` or ``10**10**10`` run until memory or patience runs out. Here lists
    and dicts are immutable; ``* ** + % ~``, every call and every filter are checked so
    that no value grows past ``MAX_SIZE`` characters or items; and each rendered value
    has a budget of printed characters, calls, loop iterations and ``range`` items
    (``reset_budget`` starts one).
    """

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any):
        super().__init__(finalize=self._finalize, **options)
        self.work = 0
        self.deadline = math.inf  # when the file's time budget runs out (time.monotonic)
        for name, func in list(self.filters.items()):
            self.filters[name] = _bounded_filter(func, name)
        self.globals["range"] = self._range

    def reset_budget(self) -> None:
        self.work = 0

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):  # every loop pays for its iterations
            loop.iter = nodes.Call(nodes.EnvironmentAttribute("checked_iter"), [loop.iter], [],
                                   None, None, lineno=loop.iter.lineno)
        return tree

    def checked_iter(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            self.spend(1)
            yield item

    def spend(self, amount: int) -> None:
        self.work += amount
        if self.work > MAX_WORK:
            raise _TooBig(f"the value takes over {MAX_WORK:,} steps to render")
        if time.monotonic() > self.deadline:
            raise _TooBig(f"the file's templates take over {MAX_SECONDS:g} s to render; "
                          "this value is over the budget")

    def _finalize(self, value: Any) -> Any:
        self.spend(_weight(value, MAX_WORK))
        return value

    def _range(self, *args: int) -> range:
        rng = safe_range(*args)
        self.spend(len(rng))
        return rng

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        texts = [str(part) for part in parts]
        if sum(len(text) for text in texts) > MAX_SIZE:
            raise _TooBig(f"the concatenation would be over the limit of {MAX_SIZE:,} "
                          "characters")
        return "".join(texts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.spend(_CALL_COST)
        name = getattr(__obj, "__name__", "the function")
        args, kwargs = _guard_args(args, kwargs, f"an argument of {name}()")
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and name in _WIDTH_METHODS:
            _check_numbers([*args, *kwargs.values()], f"{name}()")
        elif isinstance(owner, str) and name == "replace":
            _check_replace(owner, *args[:3])
        elif name == "generate_lorem_ipsum":
            count = args[0] if args else kwargs.get("n", 5)
            words = args[3] if len(args) > 3 else kwargs.get("max", 100)
            if _is_int(count) and _is_int(words) and count * words > MAX_SIZE // 10:
                raise _TooBig(f"lipsum({count}, max={words}) is over the limit of "
                              f"{MAX_SIZE // 10:,} words")
        result = ImmutableSandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        return _guard_result(result, f"the result of {name}()")

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = str(value.__self__)

        @functools.wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> Any:
            _check_format(fmt, (*args, kwargs))
            return wrapped(*args, **kwargs)

        return checked


class _EnvMissing(Exception):
    pass


class RenderResult:
    """A rendered document, the values that must never be shown or logged, and the key
    paths of the values rendered from one (``env(..., secret=true)`` or a value holding
    a secret, such as ``params.token`` when that parameter is one)."""

    def __init__(self, doc: Document, secrets: set[str],
                 secret_paths: tuple[KeyPath, ...] = ()):
        self.doc = doc
        self.secrets = secrets
        self.secret_paths = secret_paths


def render_document(doc: Document) -> RenderResult:
    """Render every templated string value of ``doc`` (in place) and return it."""
    secrets: set[str] = set()
    renderer = _Renderer(doc, secrets)
    errors: list[ConfigError] = []
    params = doc.data.get("parameters")
    if isinstance(params, dict):
        renderer.env.globals["params"] = params
        doc.data["parameters"] = renderer.walk(params, ("parameters",), errors)
        renderer.env.globals["params"] = doc.data["parameters"]
    else:
        renderer.env.globals["params"] = {}
    for key in list(doc.data):
        if key != "parameters" and key not in UNRENDERED:
            doc.data[key] = renderer.walk(doc.data[key], (key,), errors)
    if errors:
        masking = Secrets(secrets)
        for error in errors:  # an error message may quote the value that failed
            error.message = masking.mask(error.message)
            error.hint = masking.mask(error.hint) if error.hint else error.hint
        raise ConfigErrors(errors)
    return RenderResult(doc, secrets, tuple(renderer.secret_paths))


class _Renderer:
    def __init__(self, doc: Document, secrets: set[str]):
        self.doc = doc
        self.secrets = secrets
        self.secret_paths: list[KeyPath] = []
        self._secret_used = False
        self.total = 0  # what every value rendered so far weighs
        self.over_budget = False  # the file's budget ran out: the other values stay as written
        self.env = _LimitedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)
        self.env.deadline = time.monotonic() + MAX_SECONDS
        self.env.globals.update(env=self._env, now=_now)

    def _env(self, name: str, default: Any = _MISSING, secret: bool = False) -> Any:
        value = os.environ.get(str(name))
        if value is None:
            if default is _MISSING:
                raise _EnvMissing(name)
            value = default
        if secret and value not in (None, ""):
            self.secrets.add(str(value))
            self._secret_used = True
        return value

    def walk(self, value: Any, path: KeyPath, errors: list[ConfigError]) -> Any:
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k), errors) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i), errors) for i, v in enumerate(value)]
        if is_template(value) and not self.over_budget:
            self._secret_used = False
            try:
                self._check_total(path)
                result = self.render(value)
                self.total += _weight(result, MAX_TOTAL)
                text = "" if result is None else str(result)
                if (self._secret_used or self._reads_secret_params(value)
                        or any(s in text for s in self.secrets)):
                    self._taint(path, result)
                return result
            except ConfigError as exc:
                exc.file, exc.line, exc.column = self.doc.where(path)
                exc.key_path = path
                errors.append(exc)
                self.over_budget = (self.total > MAX_TOTAL
                                    or time.monotonic() > self.env.deadline)
        return value

    def _check_total(self, path: KeyPath) -> None:
        """Refuse the value at ``path`` once the document's templates built or spent too
        much: each value is bounded, but thousands of them are not."""
        if self.total > MAX_TOTAL:
            raise ConfigError(
                f"template not allowed: the file's templates render over {MAX_TOTAL:,} "
                "characters in all; this value is over the budget", code="KMLC114",
                hint="the sandbox bounds what one file may compute; build large values "
                     "in a node")
        if time.monotonic() > self.env.deadline:
            raise ConfigError(
                f"template not allowed: the file's templates take over {MAX_SECONDS:g} s to "
                "render; this value is over the budget", code="KMLC114",
                hint="the sandbox bounds what one file may compute; compute in a node")

    def _taint(self, path: KeyPath, result: Any) -> None:
        """The value at ``path`` was computed from a secret: it is one (any length of it
        is masked by its key; its text, when long enough to mean something, everywhere)."""
        self.secret_paths.append(path)
        if isinstance(result, bool) or result is None:
            return
        if any(s in str(result) for s in self.secrets):
            return  # masked where the secret is (``http://host?t=***``) and by its key
        forms = {str(result)}
        if isinstance(result, float):
            forms.add(repr(result))
        self.secrets.update(f for f in forms if len(f) >= MIN_DERIVED)

    def _reads_secret_params(self, text: str) -> bool:
        """Whether the template ``text`` reads a secret parameter (or a mapping or list
        holding one, or all of ``params``): read statically, conservatively."""
        secret = [tuple(p[1:]) for p in self.secret_paths if p[:1] == ("parameters",)]
        if not secret or "params" not in text:
            return False
        try:
            tree = self.env.parse(text)
        except jinja2.TemplateSyntaxError:
            return False  # rendering reports it
        params = self.env.globals.get("params")
        for read in _params_reads(tree):
            touched = _resolve(params, read)
            if any(s[:len(touched)] == touched or touched[:len(s)] == s for s in secret):
                return True
        return False

    def render(self, text: str) -> Any:
        self.env.reset_budget()
        try:
            expression = self._expression(text) if _SINGLE.match(text) else None
            if expression is not None:
                return self._evaluate(expression)
            chunks = []
            # chunk by chunk, so that a runaway loop is stopped before it is all in memory
            for chunk in self.env.from_string(text).generate():
                self.env.spend(len(chunk))
                chunks.append(chunk)
            result = "".join(chunks)
        except _EnvMissing as exc:
            raise ConfigError(
                f"environment variable '{exc.args[0]}' is not set", code="KMLC113",
                hint=f"set it, or give a default: env('{exc.args[0]}', 'value')",
            ) from None
        except _TooBig as exc:
            raise ConfigError(f"template not allowed: {exc}", code="KMLC114",
                              hint="the sandbox bounds what one value may compute") from None
        except SecurityError as exc:
            raise ConfigError(f"template not allowed: {exc}", code="KMLC114") from None
        except MemoryError:
            raise ConfigError("template error: out of memory", code="KMLC114",
                              hint="the sandbox bounds what one value may compute") from None
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"template error: {exc.message}", code="KMLC112",
                hint="available: env('NAME', default), params, now()",
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"template syntax error: {exc.message}", code="KMLC112") from None
        except Exception as exc:  # a user's expression failing at render time
            raise ConfigError(f"template error: {type(exc).__name__}: {exc}",
                              code="KMLC112") from None
        return result

    def _expression(self, text: str) -> Any:
        """``text``, a single ``{{ expression }}``, compiled; ``None`` if it does not compile."""
        inner = text.strip()[2:-2]
        if inner.startswith(("-", "+")):
            inner = inner[1:]  # whitespace control, as in {{- x -}}
        if inner.endswith(("-", "+")):
            inner = inner[:-1]
        try:
            return self.env.compile_expression(inner, undefined_to_none=False)
        except jinja2.TemplateSyntaxError:
            return None  # rendered as a template, which reports the error as templates do

    def _evaluate(self, expression: Any) -> Any:
        """The value of a single expression, keeping null, booleans and numbers."""
        value = expression()
        if isinstance(value, jinja2.Undefined):
            str(value)  # StrictUndefined: raises the UndefinedError of the missing name
        if value is None or isinstance(value, bool | int | float):
            return value
        if not isinstance(value, str):
            _check_weight(value, "the value")
            value = str(value)  # as Jinja would print it: a list stays its text
        return _as_scalar(value)


_ANY = object()  # a step of a ``params`` read that is not a constant: any key


def _params_reads(tree: nodes.Node) -> list[tuple[Any, ...]]:
    """Every read of ``params`` in ``tree``, as its constant steps (``params.a['b'].c``:
    ``('a', 'b', 'c')``; a computed step ends with ``_ANY``)."""
    reads: list[tuple[Any, ...]] = []

    def chain(node: nodes.Node) -> tuple[Any, ...] | None:
        if isinstance(node, nodes.Name):
            return () if node.name == "params" else None
        if isinstance(node, nodes.Getattr):
            base = chain(node.node)
            return None if base is None else (*base, node.attr)
        if isinstance(node, nodes.Getitem):
            base = chain(node.node)
            if base is None:
                return None
            step = node.arg.value if isinstance(node.arg, nodes.Const) else _ANY
            return (*base, step)
        return None

    def visit(node: nodes.Node) -> None:
        steps = chain(node)
        if steps is not None:
            reads.append(steps)
            while isinstance(node, nodes.Getattr | nodes.Getitem):
                if isinstance(node, nodes.Getitem):
                    visit(node.arg)
                node = node.node
            return
        for child in node.iter_child_nodes():
            visit(child)

    visit(tree)
    return reads


def _resolve(params: Any, steps: tuple[Any, ...]) -> tuple[Any, ...]:
    """The key path of the value of ``params`` a read reaches: its steps up to the first
    one that is not a key of the value there (a method such as ``items``, a computed key),
    which reads the whole value there."""
    value, path = params, []
    for step in steps:
        if isinstance(value, dict) and step is not _ANY and step in value:
            value = value[step]
        elif (isinstance(value, list) and isinstance(step, int) and not isinstance(step, bool)
              and -len(value) <= step < len(value)):
            step %= len(value)
            value = value[step]
        else:
            break
        path.append(step)
    return tuple(path)


def _now(fmt: str | None = None) -> Any:
    moment = _dt.datetime.now(_dt.UTC)
    return moment.strftime(fmt) if fmt else moment.isoformat(timespec="seconds")


def _as_scalar(text: str) -> Any:
    try:
        value = load_value(text)
    except ValueError:
        return text
    if isinstance(value, str | int | float | bool) or value is None:
        return value if text.strip() else text
    return text
