"""The converter's second pass: apply the plan to the tree, keeping every comment and the layout around.

Nothing is decided here: each ``leave_*`` looks its original node up in the
:class:`~loadgen.convert.plan.Plan`. Statements the plan marks get their
``# loadgen convert: <why>`` comments. Each top-level statement's result is
kept beside its original, so a statement whose conversion does not compile (a
converter bug) can go back to its original text (:meth:`Transformer.fallback`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import libcst as cst

from .analysis import code_of
from .plan import CallFix, Plan

__all__ = ["Transformer", "render", "compiles"]

_Result = cst.CSTNode | cst.RemovalSentinel | cst.FlattenSentinel[cst.CSTNode]


def render(tree: cst.Module, plan: Plan, compiles_ok: Callable[[str], bool], line: Callable[[cst.CSTNode], int]
           ) -> str:
    """The code of ``tree`` with ``plan`` applied; a top-level statement whose result does not compile
    (``compiles_ok``) is put back as it was, with a warning."""
    transformer = Transformer(plan)
    converted = tree.visit(transformer)
    if compiles_ok(converted.code):
        return converted.code
    fixed, restored = transformer.fallback(tree, compiles_ok)
    for stmt in restored:
        what = f"def {stmt.name.value}" if isinstance(stmt, cst.FunctionDef) else \
            f"class {stmt.name.value}" if isinstance(stmt, cst.ClassDef) else code_of(stmt, 40)
        plan.notes.warn(line(stmt), f"{what}: the converter could not convert this statement and left it as it "
                        "was: please report this")
    return fixed.code


def compiles(code: str, filename: str) -> bool:
    """Whether ``code`` compiles: its syntax, and what the compiler checks beyond (``await`` outside ``async``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (an invalid escape) are the file's business
            compile(code, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


class Transformer(cst.CSTTransformer):
    """Applies a :class:`Plan` to the tree it was made from."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self._top: list[tuple[cst.BaseStatement, _Result]] = []  # top-level statements: (original, converted)
        self._depth = 0
        # `pass` lines left by a dropped statement only to hold its comments: they go to the next statement.
        self._carriers: list[cst.SimpleStatementLine] = []

    # -- every node ------------------------------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self._depth += 1
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> _Result:  # type: ignore[override]
        result: _Result = super().on_leave(original_node, updated_node)
        replacement = self.plan.replaced.get(original_node)
        if replacement is not None:
            result = replacement.deep_clone()
        if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self._depth -= 1
            result = self._mark(original_node, result)
            if self._depth == 0:
                self._top.append((original_node, result))
        return result

    def _mark(self, original: cst.CSTNode, result: _Result) -> _Result:
        """Put the plan's marker comments above the statement (or what it became)."""
        lines = self.plan.notes.comment_lines(original)
        if not lines:
            return result
        if isinstance(result, cst.RemovalSentinel):
            result = cst.SimpleStatementLine(body=[cst.Pass()])
        if isinstance(result, cst.FlattenSentinel):
            nodes = list(result.nodes)
            if not nodes:
                return cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=lines)
            nodes[0] = _with_lines(nodes[0], lines)
            return cst.FlattenSentinel(nodes)
        return _with_lines(result, lines)

    # -- names -----------------------------------------------------------------------------------
    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        new = self.plan.renames.get(original_node)
        return updated_node.with_changes(value=new) if new else updated_node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        new = self.plan.attribute_renames.get(original_node)
        if new:
            updated_node = updated_node.with_changes(attr=cst.Name(new))
        return updated_node.with_changes(value=_parenthesized(updated_node.value))

    def leave_Subscript(self, original_node: cst.Subscript, updated_node: cst.Subscript) -> cst.Subscript:
        return updated_node.with_changes(value=_parenthesized(updated_node.value))

    # -- calls -----------------------------------------------------------------------------------
    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        plan = self.plan
        call = updated_node.with_changes(func=_parenthesized(updated_node.func))
        fix = plan.client_calls.get(original_node)
        if fix is not None:
            call = call.with_changes(args=_fixed_args(call.args, fix))
        if original_node in plan.super_inits:
            call = call.with_changes(args=[cst.Arg(cst.Name("args"), star="*"), cst.Arg(cst.Name("kwargs"), star="**")])
        if original_node in plan.sleeps:
            sleep = cst.Attribute(cst.Name("asyncio"), cst.Name("sleep"))
            return cst.Await(call.with_changes(func=sleep))
        if original_node in plan.awaited:
            return cst.Await(call)
        return call

    # -- statements ------------------------------------------------------------------------------
    def leave_FunctionDef(self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef) -> cst.FunctionDef:
        plan = self.plan
        node = updated_node
        if original_node in plan.async_defs:
            node = node.with_changes(asynchronous=cst.Asynchronous())
        if plan.dropped_decorators:
            kept = [new for old, new in zip(original_node.decorators, node.decorators)
                    if old not in plan.dropped_decorators]
            if len(kept) != len(node.decorators):
                node = node.with_changes(decorators=kept)
        if original_node in plan.init_rewrites:
            p = node.params
            first = (p.posonly_params or p.params)[:1]
            node = node.with_changes(params=cst.Parameters(
                params=[first[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)] if first else [],
                star_arg=cst.Param(cst.Name("args")),
                star_kwarg=cst.Param(cst.Name("kwargs")),
            ))
        return node

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> _Result:
        fix = self.plan.withs.get(original_node)
        if fix is None:
            return updated_node
        body = _statements(updated_node.body)
        if fix.unwrap:  # rename_request: the block's statements, without the `with`
            if not body:
                body = [cst.SimpleStatementLine(body=[cst.Pass()])]
            header = _header_comment(updated_node.body)
            lines = [*updated_node.leading_lines, *([header] if header else [])]
            body[0] = _with_lines(body[0], [*lines, *body[0].leading_lines])
            return cst.FlattenSentinel(body)
        call = updated_node.items[0].item
        awaited = call if isinstance(call, cst.Await) else cst.Await(call)
        trailing = updated_node.body.header if isinstance(updated_node.body, cst.IndentedBlock) else \
            updated_node.body.trailing_whitespace
        statement: cst.BaseSmallStatement = cst.Expr(awaited) if fix.target is None else cst.Assign(
            targets=[cst.AssignTarget(fix.target.deep_clone())], value=awaited)
        first = cst.SimpleStatementLine(
            body=[statement],
            leading_lines=updated_node.leading_lines,
            trailing_whitespace=trailing,
        )
        rest = [s for s in body if not _bare_pass(s)]
        return cst.FlattenSentinel([first, *rest])

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine,
                                  updated_node: cst.SimpleStatementLine) -> _Result:
        body = self._small(original_node.body, updated_node.body)
        if body is None:
            return updated_node
        if body:
            return updated_node.with_changes(body=body)
        if _has_comments(updated_node):
            carrier = updated_node.with_changes(body=[cst.Pass()])
            self._carriers.append(carrier)
            return carrier
        return cst.RemovalSentinel.REMOVE

    def leave_SimpleStatementSuite(self, original_node: cst.SimpleStatementSuite,
                                   updated_node: cst.SimpleStatementSuite) -> cst.SimpleStatementSuite:
        body = self._small(original_node.body, updated_node.body)
        if body is None:
            return updated_node
        return updated_node.with_changes(body=body or [cst.Pass()])

    def _small(self, original: Sequence[cst.BaseSmallStatement], updated: Sequence[cst.BaseSmallStatement]
               ) -> list[cst.BaseSmallStatement] | None:
        """The small statements of a line after drops and import rewrites, or None if unchanged."""
        plan = self.plan
        if not any(o in plan.dropped or o in plan.imports for o in original):
            return None
        out: list[cst.BaseSmallStatement] = []
        for old, new in zip(original, updated):
            if old in plan.dropped:
                continue
            out.extend(plan.imports.get(old, [new]))
        return [s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) if i == len(out) - 1 else
                s.with_changes(semicolon=cst.Semicolon(whitespace_after=cst.SimpleWhitespace(" ")))
                for i, s in enumerate(out)]

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
                            ) -> cst.IndentedBlock:
        if not updated_node.body:
            return updated_node.with_changes(body=[cst.SimpleStatementLine(body=[cst.Pass()])])
        if not self._carriers:
            return updated_node
        body: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []
        for stmt in updated_node.body:
            if any(stmt is c for c in self._carriers) and isinstance(stmt, cst.SimpleStatementLine):
                pending += [*stmt.leading_lines, *_trailing_line(stmt)]
                continue
            if pending and isinstance(stmt, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                stmt = stmt.with_changes(leading_lines=[*pending, *stmt.leading_lines])
                pending = []
            body.append(stmt)
        if pending:  # nothing follows: the comments stay on a `pass`
            body.append(cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=pending))
        return updated_node.with_changes(body=body)

    def leave_If(self, original_node: cst.If, updated_node: cst.If) -> cst.If:
        imports = self.plan.main_imports.get(original_node)
        if not imports or not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        lines = [cst.SimpleStatementLine(body=[i]) for i in imports]
        return updated_node.with_changes(body=updated_node.body.with_changes(body=[*lines, *updated_node.body.body]))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self.plan.needs_asyncio or _imports_asyncio(updated_node):
            return updated_node
        return updated_node.with_changes(body=_with_asyncio(list(updated_node.body)))

    # -- the safety net --------------------------------------------------------------------------
    def fallback(self, original: cst.Module, compiles: Callable[[str], bool]
                 ) -> tuple[cst.Module, list[cst.BaseStatement]]:
        """The converted module with each top-level statement that does not compile put back as it was.

        Returns the module and the original statements put back.
        """
        body: list[cst.BaseStatement] = []
        restored: list[cst.BaseStatement] = []
        for old, new in self._top:
            nodes: list[cst.CSTNode]
            if isinstance(new, cst.RemovalSentinel):
                nodes = []
            elif isinstance(new, cst.FlattenSentinel):
                nodes = list(new.nodes)
            else:
                nodes = [new]
            stmts = [n for n in nodes if isinstance(n, cst.BaseStatement)]
            if stmts and not compiles(original.with_changes(body=stmts).code):
                body.append(old)
                restored.append(old)
            else:
                body.extend(stmts)
        module = original.with_changes(body=body)
        if self.plan.needs_asyncio and not _imports_asyncio(module):
            module = module.with_changes(body=_with_asyncio(list(module.body)))
        return module, restored


def _with_lines(node: cst.CSTNode, lines: Sequence[cst.EmptyLine]) -> cst.CSTNode:
    if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        return node.with_changes(leading_lines=[*node.leading_lines, *lines])
    return node


def _parenthesized(expr: cst.BaseExpression) -> cst.BaseExpression:
    """An ``await`` used as a primary (``(await c.get(u)).json()``) needs parentheses."""
    if isinstance(expr, cst.Await) and not expr.lpar:
        return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expr


def _fixed_args(args: Sequence[cst.Arg], fix: CallFix) -> list[cst.Arg]:
    """A client call's arguments as loadgen's client takes them; the call's layout (commas, lines) kept."""
    out: list[cst.Arg] = []
    for i, arg in enumerate(args):
        keyword = fix.keywords.get(i) or (arg.keyword.value if arg.keyword is not None else None)
        if keyword in fix.dropped:
            continue
        if i in fix.keywords:
            arg = arg.with_changes(keyword=cst.Name(keyword), equal=_EQUAL)
        out.append(arg)
    extra: list[cst.Arg] = []
    if fix.name is not None:
        extra.append(cst.Arg(value=fix.name, keyword=cst.Name("name"), equal=_EQUAL))
    if fix.expect:
        codes = sorted(fix.expect)
        value: cst.BaseExpression = cst.Integer(str(codes[0])) if len(codes) == 1 else cst.Tuple(
            [cst.Element(cst.Integer(str(c))) for c in codes])
        extra.append(cst.Arg(value=value, keyword=cst.Name("expect"), equal=_EQUAL))
    at = next((i for i, a in enumerate(out) if a.star == "**"), len(out))
    out[at:at] = extra
    if not out:
        return out
    # Between arguments: the separator the call already uses (a newline and indent in a tall call);
    # after the last: what the original last argument had (a trailing comma, or none).
    # After the last, what the original last argument had: a trailing comma or none, and the space
    # (maybe a newline) before the closing parenthesis.
    end = args[-1].comma if args else cst.MaybeSentinel.DEFAULT
    end_space = args[-1].whitespace_after_arg if args else _NO_SPACE
    sep = args[-2].comma if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma) else _COMMA
    was_last, last = _split_comma(end, sep)
    fixed = []
    for i, a in enumerate(out):
        if i == len(out) - 1:
            fixed.append(a.with_changes(comma=last if a.comma is not end else end, whitespace_after_arg=end_space))
            continue
        if a.whitespace_after_arg is end_space:
            a = a.with_changes(whitespace_after_arg=_NO_SPACE)
        if a.comma is end:
            a = a.with_changes(comma=was_last)
        elif not isinstance(a.comma, cst.Comma):
            a = a.with_changes(comma=sep)
        fixed.append(a)
    return fixed


def _split_comma(end: cst.Comma | cst.MaybeSentinel, sep: cst.Comma
                 ) -> tuple[cst.Comma | cst.MaybeSentinel, cst.Comma | cst.MaybeSentinel]:
    """When arguments follow the one that was last: (its comma, the new last one's).

    In a tall call the old last keeps its comment and takes the others' indent; the new
    last gets the trailing comma and the line break before the parenthesis.
    """
    if not isinstance(end, cst.Comma):
        return sep, end
    space, between = end.whitespace_after, sep.whitespace_after
    if isinstance(space, cst.ParenthesizedWhitespace) and isinstance(between, cst.ParenthesizedWhitespace):
        return (
            end.with_changes(whitespace_after=space.with_changes(indent=between.indent, last_line=between.last_line)),
            end.with_changes(whitespace_after=space.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])),
        )
    return sep, end


_EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
_NO_SPACE = cst.SimpleWhitespace("")


def _statements(body: cst.BaseSuite) -> list[cst.BaseStatement]:
    if isinstance(body, cst.IndentedBlock):
        return list(body.body)
    assert isinstance(body, cst.SimpleStatementSuite)
    return [cst.SimpleStatementLine(body=list(body.body))]


def _header_comment(body: cst.BaseSuite) -> cst.EmptyLine | None:
    """The comment after a block's colon, as a line of its own."""
    trailing = body.header if isinstance(body, cst.IndentedBlock) else body.trailing_whitespace
    if trailing.comment is None:
        return None
    return cst.EmptyLine(comment=trailing.comment)


def _trailing_line(stmt: cst.SimpleStatementLine) -> list[cst.EmptyLine]:
    comment = stmt.trailing_whitespace.comment
    return [cst.EmptyLine(comment=comment)] if comment is not None else []


def _bare_pass(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Pass)
        and not _has_comments(stmt)
    )


def _has_comments(stmt: cst.SimpleStatementLine) -> bool:
    return stmt.trailing_whitespace.comment is not None or any(ln.comment is not None for ln in stmt.leading_lines)


def _imports_asyncio(module: cst.Module) -> bool:
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Import) and any(
                    isinstance(a.name, cst.Name) and a.name.value == "asyncio" and a.asname is None for a in small.names
                ):
                    return True
    return False


def _with_asyncio(body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """``body`` with ``import asyncio`` before its first import (after a docstring and __future__ imports)."""
    at = 0
    for i, stmt in enumerate(body):
        small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and stmt.body else None
        if isinstance(small, cst.ImportFrom) and isinstance(small.module, cst.Name) and small.module.value == "__future__":
            at = i + 1
            continue
        if i == 0 and isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)):
            at = 1
            continue
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            at = i
        break
    line = cst.SimpleStatementLine(body=[cst.Import(names=[cst.ImportAlias(cst.Name("asyncio"))])])
    if at < len(body) and isinstance(body[at], (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        # The next statement's comments stay above the imports they introduced.
        nxt = body[at]
        line = line.with_changes(leading_lines=nxt.leading_lines)
        body[at] = nxt.with_changes(leading_lines=[])
    return [*body[:at], line, *body[at:]]
