"""``loadgen convert``: a Locust locustfile becomes a loadgen scenario, its comments and layout kept.

Built on libcst (a concrete syntax tree: what is not changed comes out
byte for byte). Three steps: collect facts about the file (analysis.py),
decide every change (decide.py, imports.py) into a plan (plan.py), apply it
(locust.py). What cannot be translated is kept as it was, marked with
``# loadgen convert: <why>`` and listed in :attr:`Conversion.warnings`. The
result always compiles: a top-level statement whose conversion would not is
put back as it was, with a warning.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider, ScopeProvider

from ..errors import UsageError
from .analysis import collect, is_locust
from .decide import decide
from .imports import plan_imports
from .locust import compiles, render
from .notes import Notes
from .plan import Plan

__all__ = ["Conversion", "convert_source", "is_locustfile"]


@dataclass(frozen=True)
class Conversion:
    """A converted file: its ``code`` and ``warnings`` (``file:line: what and why``, in line order)."""

    code: str
    warnings: tuple[str, ...]


def is_locustfile(source: str) -> bool:
    """Whether ``source`` parses and imports locust (``import locust``, ``from locust... import``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (an invalid escape) are the file's business
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(is_locust(a.name) for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level and node.module and is_locust(node.module):
            return True
    return False


def convert_source(source: str, filename: str) -> Conversion:
    """Convert the locustfile ``source`` (``filename`` names it in warnings).

    Raises :class:`~loadgen.errors.UsageError` for a file that does not parse
    or does not import locust.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise UsageError(f"{filename}:{exc.lineno}: not valid Python ({exc.msg})") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise UsageError(f"{filename}: not valid Python ({exc})") from None
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise UsageError(f"{filename}:{exc.raw_line}: not Python that the converter can read ({exc.message})") from None
    if not is_locustfile(source):
        raise UsageError(f"{filename} is not a locustfile: it imports nothing from locust")
    notes = Notes(filename)
    try:
        code = _convert(module, notes, filename)
    except Exception as exc:  # a converter bug must not cost the user their file: hand it back as it was
        notes = Notes(filename)
        notes.warn(1, f"the converter failed ({type(exc).__name__}: {exc}); the file is left as it was: please "
                   "report this")
        return Conversion(source, notes.warnings())
    if not compiles(code, filename):  # cannot happen once render's fallback ran; never hand back broken code
        notes.warn(1, "the converted file did not compile; the file is left as it was: please report this")
        return Conversion(source, notes.warnings())
    return Conversion(code, notes.warnings())


def _convert(module: cst.Module, notes: Notes, filename: str) -> str:
    wrapper = MetadataWrapper(module)
    tree = wrapper.module
    positions = wrapper.resolve(PositionProvider)
    parents = wrapper.resolve(ParentNodeProvider)
    scopes = wrapper.resolve(ScopeProvider)

    def line(node: cst.CSTNode) -> int:
        return positions[node].start.line

    plan = Plan(notes)
    facts = collect(wrapper)
    consumed = decide(facts, plan, parents, line)
    plan_imports(tree, scopes, parents, line, plan, consumed, facts.main_blocks)
    return render(tree, plan, lambda code: compiles(code, filename), line)
