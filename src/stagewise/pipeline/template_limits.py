"""Bounds on what one template may cost: output size and render time.

Jinja's sandbox stops templates from reaching Python internals, not from doing unbounded
work: `{{ 'a' * 200000000 }}` took a server from 1 GB to 9 GB, and nested loops run as long
as they like. Here:

* repetition (`*`) and powers (`**`) are checked before they are computed, and so is every
  integer handed to a call (`'a'.ljust(10**9)`, `'x'.center(n)`): none may reach beyond the
  output limit;
* output is produced a chunk at a time and counted;
* the template's own code runs under a deadline: a trace function, installed only while a
  template renders and only on the template's frames, checks the clock every 256 lines.

Past a bound a TemplateLimitExceeded (a 422) names it.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

from jinja2.sandbox import SandboxedEnvironment

from stagewise.errors import ValidationFailed

T = TypeVar("T")
_TEMPLATE_CODE = "<template>"  # the file name Jinja compiles template code under


@dataclass
class TemplateLimits:
    max_output_chars: int = 100_000
    max_render_ms: float = 250.0


LIMITS = TemplateLimits()  # set once per process from the settings


class TemplateLimitExceeded(ValidationFailed):
    code = "template_limit_exceeded"


def _too_big(what: str) -> TemplateLimitExceeded:
    return TemplateLimitExceeded(
        f"Template {what}: the limit is {LIMITS.max_output_chars} characters",
        limit_chars=LIMITS.max_output_chars,
    )


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else None


# widths and precisions in %-formats and {}-format specs
_PERCENT_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:[^{}\d.]*(\d*)(?:\.(\d+))?[^{}]*\}")


def _check_format(text: Any) -> None:
    if not isinstance(text, str):
        return
    for pattern in (_PERCENT_WIDTH, _BRACE_SPEC):
        for match in pattern.finditer(text):
            for group in match.groups():
                if group and int(group) > LIMITS.max_output_chars:
                    raise _too_big(f"format width {group}")


def _check_ints(values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, int) and abs(value) > LIMITS.max_output_chars:
            raise _too_big(f"size argument {value}")


def _guarded_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A Jinja filter whose size arguments (`center(width)`, `indent(width)`) and format
    strings are checked before it runs, and whose output is counted after."""

    @functools.wraps(fn)  # keeps Jinja's pass_context / pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_ints((*args[1:], *kwargs.values()))
        for value in args:
            _check_format(value)
        return _checked_output(fn(*args, **kwargs))

    return guarded


class BoundedSandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters = {name: _guarded_filter(f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                size = _size(seq)
                if (
                    size is not None
                    and isinstance(times, int)
                    and size * times > (LIMITS.max_output_chars)
                ):
                    raise _too_big(f"repetition makes {size * times} items")
        elif operator == "%":
            _check_format(left)
        elif isinstance(left, int) and isinstance(right, int) and right > 0:
            digits = left.bit_length() * right * 0.302  # decimal digits of left ** right
            if digits > LIMITS.max_output_chars:
                raise _too_big(f"power has about {int(digits)} digits")
        return _checked_output(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # The sandbox hands out its own wrapper for str.format / format_map: the format
        # string's widths are checked before it runs.
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(value.__self__)
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # Methods of strings and sequences size their output from their arguments
        # ('a'.ljust(10**9)) or from a format string ('{:>999999999}'.format(1)).
        if isinstance(getattr(__obj, "__self__", None), str | bytes | list | tuple):
            _check_ints((*args, *kwargs.values()))
            _check_format(__obj.__self__)
        return _checked_output(super().call(__context, __obj, *args, **kwargs))


def _checked_output(value: Any) -> Any:
    size = _size(value)
    if size is not None and size > LIMITS.max_output_chars:
        raise _too_big(f"output has {size} items")
    return value


def bounded(fn: Callable[[], T]) -> T:
    """Run a template render under the render-time limit (see the module doc)."""
    deadline = time.perf_counter() + LIMITS.max_render_ms / 1000.0
    lines = 0

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal lines
        lines += 1
        if lines % 256 == 0 and time.perf_counter() > deadline:
            raise TemplateLimitExceeded(
                f"Template took longer than {LIMITS.max_render_ms:g} ms to render",
                limit_ms=LIMITS.max_render_ms,
            )
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        return on_line if frame.f_code.co_filename == _TEMPLATE_CODE else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        result: T = _checked_output(fn())
        return result
    finally:
        sys.settrace(previous)


def joined(chunks: Iterator[str]) -> str:
    """A template's streamed output, refused as soon as it passes the size limit."""
    out: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > LIMITS.max_output_chars:
            raise _too_big(f"output passes {total} characters")
        out.append(chunk)
    return "".join(out)
