"""Writing a :class:`~loadgen.har.plan.Plan` as a scenario file's Python source.

Every literal is escaped here (printable characters kept, the rest as
escapes), and values read at run time go through f-strings built here, so any
recorded text (quotes, braces, backslashes, control characters) gives source
that parses; ``write`` checks that with :func:`ast.parse` before returning.
"""

from __future__ import annotations

import ast
import math
import textwrap

from .correlate import JsonTemplate, Ref, Source, Template, TemplateLeaf
from .plan import Call, Plan, Step

__all__ = ["write"]

_WIDTH = 110
_CLIENT_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _escaped(text: str) -> str:
    """``text`` for the inside of a double-quoted literal: printable characters as they are, the rest escaped."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x100:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return "".join(out)


def string(text: str) -> str:
    """Source for a string literal (double quotes, as the project writes them)."""
    return f'"{_escaped(text)}"'


def _fstring_text(text: str) -> str:
    return _escaped(text).replace("{", "{{").replace("}", "}}")


def template(parts: Template) -> str:
    """Source for a string template: a literal, ``self.var`` (``str(self.var)`` for a number) or an f-string."""
    if all(isinstance(p, str) for p in parts):
        return string("".join(p for p in parts if isinstance(p, str)))
    if len(parts) == 1 and isinstance(parts[0], Ref):
        ref = parts[0]
        return f"str(self.{ref.var})" if ref.number else f"self.{ref.var}"
    inner = "".join(f"{{self.{p.var}}}" if isinstance(p, Ref) else _fstring_text(p) for p in parts)
    return f'f"{inner}"'


def literal(node: JsonTemplate) -> str:
    """Source for a JSON value whose leaves may be read at run time."""
    if isinstance(node, Ref):
        return f"self.{node.var}"
    if isinstance(node, TemplateLeaf):
        return template(node.parts)
    if isinstance(node, dict):
        return "{" + ", ".join(f"{string(k)}: {literal(v)}" for k, v in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(literal(v) for v in node) + "]"
    if isinstance(node, float) and not math.isfinite(node):
        return f'float("{node}")'  # JSON readers accept NaN and Infinity; Python's literals do not
    if isinstance(node, str):
        return string(node)
    return repr(node)


def _read(var: str, source: Source) -> str:
    """The statement that stores a value of the last response on ``self``."""
    if source.kind == "json":
        return f"self.{var} = r.json()" + "".join(f"[{string(p) if isinstance(p, str) else p}]" for p in source.path)
    if source.kind == "header":
        return f"self.{var} = r.headers[{string(str(source.path[0]))}]"
    return f"self.{var} = self.client.cookies.get({string(str(source.path[0]))})"


def _call(c: Call, indent: str) -> list[str]:
    """The lines of one request: the call, its check, what it reads back."""
    args = [template(c.url)]
    if c.name is not None:
        args.append(f"name={string(c.name)}")
    if c.headers:
        args.append("headers={" + ", ".join(f"{string(k)}: {template(v)}" for k, v in c.headers) + "}")
    if c.json is not None:
        args.append(f"json={literal(c.json)}")
    if c.data is not None:
        args.append(f"data={literal(c.data)}")
    if not c.follow:
        args.append("allow_redirects=False")
    if c.status >= 400:
        args.append(f"expect={c.status}")  # recorded as part of the session: not an error of the replay
    if c.method in _CLIENT_METHODS:
        head = f"r = await self.client.{c.method.lower()}("
    else:
        head = f"r = await self.client.request({string(c.method)}, "
    one = f"{indent}{head}{', '.join(args)})"
    if len(one) <= _WIDTH:
        lines = [one]
    else:  # one argument a line
        lines = [f"{indent}{head.rstrip()}", *(f"{indent}    {a}," for a in args), f"{indent})"]
    status = "(200, 304)" if c.status == 304 else str(c.status)  # a browser's revalidation may now be a 200
    lines.append(f"{indent}r.check(status={status})")
    lines += [f"{indent}{_read(var, src)}" for var, src in c.reads]
    return lines


def _think(seconds: float, indent: str) -> list[str]:
    return [f"{indent}await asyncio.sleep({seconds})"] if seconds > 0 else []


def _calls(calls: tuple[Call, ...], indent: str) -> list[str]:
    lines: list[str] = []
    for c in calls:
        lines += _think(c.think_s, indent)
        lines += _call(c, indent)
    return lines


def _plain(text: str) -> str:
    """Recorded text fit for a docstring: nothing that ends or escapes it, nothing unprintable."""
    text = text.replace("\\", "/").replace('"', "'")
    return "".join(c if c.isprintable() or c == " " else "?" for c in text)


def _docstring(text: str) -> str:
    return f'"""{" ".join(_plain(text).split())}"""'


def _uses_sleep(plan: Plan) -> bool:
    calls = [*plan.on_start, *(c for s in plan.steps for c in s.calls)]
    return any(c.think_s > 0 for c in calls) or any(s.pause_s > 0 for s in plan.steps[1:])


def _header(plan: Plan) -> list[str]:
    dropped = sum(plan.dropped.values())
    what = "; ".join(f"{n} {why}" for why, n in sorted(plan.dropped.items()))
    recorder = f" (recorded by {plan.creator})" if plan.creator else ""
    summary = f"{plan.kept} recorded request(s) replayed" + (f", {dropped} left out ({what})." if dropped else ".")
    text = [
        *textwrap.wrap(f"Replays the session in {plan.source}{recorder}; written by `loadgen har`.", 100),
        "",
        *textwrap.wrap(summary, 96),
        "Values the server handed out (tokens, ids) are read from the live responses, so the",
        "replay keeps working after the recording's tokens expire; the rest is replayed as recorded.",
        "",
        f"    loadgen run {plan.scenario} --host {plan.host}",
    ]
    text = [_plain(line) for line in text]
    return ['"""' + text[0], *text[1:], '"""']


def _step(step: Step) -> list[str]:
    lines = [f"    async def {step.method}(self) -> None:", f"        {_docstring(step.title)}"]
    body = _calls(step.calls, " " * 8)
    return lines + (body or ["        pass"])


def write(plan: Plan) -> str:
    """The scenario file's source (checked to parse)."""
    out = _header(plan)
    out += ["", "from __future__ import annotations", ""]
    if _uses_sleep(plan):
        out += ["import asyncio", ""]
    out += ["from loadgen import User, between, task", "", ""]
    low, high = plan.wait
    out += [
        "class RecordedUser(User):",
        f"    {_docstring('One browser session, replayed in the recorded order.')}",
        "",
        f"    host = {string(plan.host)}",
        f"    wait_time = between({low}, {high})",
    ]
    if plan.on_start:
        out += [
            "",
            "    async def on_start(self) -> None:",
            f"        {_docstring('The recorded login, once per user (every user signs in as the recorded account).')}",
        ]
        out += _calls(plan.on_start, " " * 8)
    if len(plan.steps) == 1:
        out += ["", "    @task"] + _step(plan.steps[0])
    else:
        out += [
            "",
            "    @task",
            "    async def replay(self) -> None:",
            f"        {_docstring('The recorded steps in order, with the recorded pauses between them.')}",
        ]
        for i, step in enumerate(plan.steps):
            if i:
                out += _think(step.pause_s, " " * 8)
            out.append(f"        await self.{step.method}()")
        for step in plan.steps:
            out += [""] + _step(step)
    source = "\n".join(out) + "\n"
    ast.parse(source)  # a SyntaxError here is a bug of this module, never of the recording
    return source
