"""Jinja2 sandboxed templates in stage parameters: INPUT, DOC, CONTEXT, STAGE (any case).

A value that is exactly one `{{ expression }}` keeps the native type of what it evaluates to
(number, list, vector), like Jinja's NativeEnvironment; mixed text renders to a string.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError
from jinja2.exceptions import SecurityError

from stagewise.domain.filters import FilterNode, parse_filter
from stagewise.errors import ValidationFailed
from stagewise.pipeline.template_limits import (
    BoundedSandbox,
    TemplateLimitExceeded,
    bounded,
    joined,
)

_WHOLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.S)
_DOC_REF = re.compile(r"\{\{[^}]*\bdoc\b", re.I)
# Templates that read what only a run produces: documents, context, earlier stages.
_LATER_SCOPE = re.compile(r"\b(?:doc|context|stage)\b", re.I)
_NAMESPACES = ("INPUT", "DOC", "CONTEXT", "STAGE", "SECRET")


def _slugify(value: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")


def _time_ago(**kwargs: float) -> str:
    return (datetime.now(UTC) - timedelta(**kwargs)).isoformat().replace("+00:00", "Z")


def _make_env() -> BoundedSandbox:
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
    env.filters["slugify"] = _slugify
    env.filters["bool"] = lambda v: (
        str(v).lower() in ("1", "true", "yes", "on") if isinstance(v, str) else bool(v)
    )
    env.globals["utc_now"] = lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z")
    env.globals["time_ago"] = _time_ago
    return env


ENV = _make_env()


def has_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def references_doc(value: str) -> bool:
    return bool(_DOC_REF.search(value))


def scope(
    *,
    inputs: dict[str, Any] | None = None,
    doc: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    stages: dict[str, Any] | None = None,
) -> dict[str, Any]:
    values = {
        "INPUT": inputs or {},
        "DOC": doc or {},
        "CONTEXT": context or {},
        "STAGE": stages or {},
        "SECRET": {},
    }
    out: dict[str, Any] = {}
    for name in _NAMESPACES:
        out[name] = out[name.lower()] = out[name.capitalize()] = values[name]
    return out


def check_syntax(value: str, where: str) -> None:
    try:
        match = _WHOLE.match(value)
        if match:
            ENV.compile_expression(match.group("expr"))
        else:
            ENV.parse(value)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(
            f"Template in {where} does not parse: {exc.message}",
            code="invalid_template",
            template=value,
            location=where,
        ) from exc


@functools.lru_cache(maxsize=4096)
def _compiled_expression(expr: str) -> Any:
    return ENV.compile_expression(expr, undefined_to_none=False)


@functools.lru_cache(maxsize=4096)
def _compiled_template(source: str) -> Any:
    return ENV.from_string(source)


def render_value(value: str, variables: dict[str, Any]) -> Any:
    """Render one string; raises UndefinedError when it references something missing."""
    match = _WHOLE.match(value)
    if match:
        expr = match.group("expr")
        compiled = _compiled_expression(expr)  # compiling costs ~1 ms: cached
        result = bounded(lambda: compiled(**variables))
        if isinstance(result, Undefined):  # a bare expression yields Undefined, not an error
            raise UndefinedError(f"'{expr.strip()}' is undefined")
        return result
    return render_template(_compiled_template(value), variables)


def render_template(template: Any, variables: dict[str, Any]) -> str:
    """A compiled template's text, within the output and time limits (template_limits)."""
    return bounded(lambda: joined(template.generate(**variables)))


@dataclass
class RenderReport:
    relaxations: list[dict[str, Any]] = field(default_factory=list)


def _is_filter_leaf(obj: dict[str, Any]) -> bool:
    return "field" in obj and ("operator" in obj or "value" in obj)


_DROP = object()
DROPPED = _DROP  # what render_params returns for a filter condition it dropped


def render_params(
    obj: Any,
    variables: dict[str, Any],
    report: RenderReport,
    *,
    where: str = "parameters",
    keep_doc_refs: bool = True,
) -> Any:
    """Render every template in a parameter tree. A filter leaf whose template references a
    missing value is dropped (a relaxation); other missing values render to None."""
    if isinstance(obj, str):
        if not has_template(obj) or (keep_doc_refs and references_doc(obj)):
            return obj
        try:
            return render_value(obj, variables)
        except (UndefinedError, TypeError):
            # A missing input (also when piped through a filter such as tojson) is absent.
            return None
        except SecurityError as exc:
            raise ValidationFailed(
                f"Template at {where} is not allowed: {exc}", code="template_forbidden"
            ) from exc
    if isinstance(obj, list):
        items = [
            render_params(v, variables, report, where=f"{where}[{i}]", keep_doc_refs=keep_doc_refs)
            for i, v in enumerate(obj)
        ]
        return [v for v in items if v is not _DROP]
    if isinstance(obj, dict):
        if _is_filter_leaf(obj):
            for value in obj.values():
                if has_template(value) and not (keep_doc_refs and references_doc(value)):
                    try:
                        render_value(value, variables)
                    except UndefinedError as exc:
                        report.relaxations.append(
                            {
                                "type": "filter_dropped",
                                "location": where,
                                "field": obj.get("field"),
                                "operator": obj.get("operator"),
                                "reason": f"missing input: {exc.message}",
                            }
                        )
                        return _DROP
        out = {}
        for key, value in obj.items():
            rendered = render_params(
                value, variables, report, where=f"{where}.{key}", keep_doc_refs=keep_doc_refs
            )
            if rendered is not _DROP:
                out[key] = rendered
        return out
    return obj


def resolve_filter(
    raw: Any,
    variables: dict[str, Any],
    inputs: dict[str, Any],
    report: RenderReport,
    *,
    where: str,
) -> FilterNode | None:
    """A filter as written (templated values, dynamic values) resolved once into the typed
    tree that the index and the evaluator both take. A value that is one whole template keeps
    the input's own type; a leaf whose input is missing is dropped (a relaxation)."""
    if not raw:
        return None
    rendered = render_params(raw, variables, report, where=where)
    if rendered is _DROP:
        return None
    return parse_filter(rendered, inputs, where=where)


def check_request_templates(trees: list[Any], inputs: dict[str, Any]) -> None:
    """Render, once, every template of a pipeline that depends on the request's inputs alone,
    so a template past its size or time limit is the request's 422 before any run starts.
    Templates that read documents or earlier stages are bounded when the run renders them."""
    variables = scope(inputs=inputs)
    stack = list(trees)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif has_template(node) and not _LATER_SCOPE.search(node):
            try:
                render_value(node, variables)
            except TemplateLimitExceeded:
                raise
            except SecurityError as exc:
                raise ValidationFailed(
                    f"Template is not allowed: {exc}", code="template_forbidden"
                ) from exc
            except Exception:  # any other failure is the run's to report
                continue


def check_tree_syntax(obj: Any, where: str = "parameters") -> None:
    if isinstance(obj, str) and has_template(obj):
        check_syntax(obj, where)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_tree_syntax(v, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check_tree_syntax(v, f"{where}.{k}")
