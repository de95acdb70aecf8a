"""Imports: Locust's names become loadgen's; what loadgen lacks stays imported from Locust, and says so.

A name imported from Locust is followed to every use (libcst's scopes): a
name loadgen has is imported from ``loadgen`` and its uses renamed
(``HttpUser`` -> ``User``; ``LoadgenUser`` when the file binds ``User``
itself); one it lacks keeps its Locust import, with a marker and a warning at
each use. An import only used under ``if __name__ == "__main__":`` moves into
that block, where ``loadgen run`` never goes. gevent imports whose every use
became ``asyncio.sleep`` go; the others stay, with a warning at each use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import libcst as cst
from libcst.metadata import GlobalScope, Scope

from .analysis import code_of, is_locust
from .names import LOADGEN_NAMES, MAPPED_WITH_WARNING, locust_reason
from .plan import Plan

__all__ = ["plan_imports"]

_GEVENT = "gevent does not run under loadgen (asyncio): {0} needs hand work (asyncio.create_task, asyncio.gather, " \
          "asyncio.Lock or asyncio.Event)"


def plan_imports(module: cst.Module, scopes: Mapping[cst.CSTNode, Scope | None], parents: Mapping[cst.CSTNode,
                 cst.CSTNode], line: Callable[[cst.CSTNode], int], plan: Plan, consumed: set[cst.CSTNode],
                 main_blocks: Sequence[cst.If]) -> None:
    """Fill ``plan.imports``, ``plan.renames``, ``plan.replaced`` and ``plan.main_imports`` for every import."""
    _Imports(module, scopes, parents, line, plan, consumed, main_blocks).run()


class _Imports:
    def __init__(self, module: cst.Module, scopes: Mapping[cst.CSTNode, Scope | None],
                 parents: Mapping[cst.CSTNode, cst.CSTNode], line: Callable[[cst.CSTNode], int], plan: Plan,
                 consumed: set[cst.CSTNode], main_blocks: Sequence[cst.If]) -> None:
        self.module = module
        self.scopes = scopes
        self.parents = parents
        self.line = line
        self.plan = plan
        self.consumed = consumed
        self.main_blocks = main_blocks
        self.taken = self._module_names()

    def run(self) -> None:
        found: list[cst.Import | cst.ImportFrom] = []

        class _Find(cst.CSTVisitor):
            def visit_Import(self, node: cst.Import) -> None:
                found.append(node)

            def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
                found.append(node)

        self.module.visit(_Find())
        for node in found:
            if isinstance(node, cst.ImportFrom):
                self._import_from(node)
            else:
                self._import(node)

    # -- helpers -------------------------------------------------------------------------------
    def statement(self, node: cst.CSTNode) -> cst.CSTNode:
        while not isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            node = self.parents[node]
        return node

    def warn(self, node: cst.CSTNode, why: str) -> None:
        self.plan.notes.warn(self.line(node), why, self.statement(node))

    def references(self, node: cst.Import | cst.ImportFrom, local: str) -> list[cst.CSTNode]:
        scope = self.scopes.get(node)
        if scope is None:
            return []
        return [acc.node for a in scope.assignments[local] if a.node is node for acc in a.references]

    def _module_names(self) -> set[str]:
        """Names the module binds other than from Locust (a class named User, say)."""
        scope = self.scopes.get(self.module)
        names: set[str] = set()
        if isinstance(scope, GlobalScope):
            for a in scope.assignments:
                node = a.node
                if isinstance(node, cst.ImportFrom) and node.module is not None and not node.relative \
                        and is_locust(code_of(node.module, 1000)):
                    continue
                if isinstance(node, cst.Import) and any(is_locust(code_of(n.name, 1000)) for n in node.names):
                    continue
                names.add(a.name)
        return names

    def local_for(self, target: str) -> str:
        return target if target not in self.taken else f"Loadgen{target}"

    def main_block(self, refs: list[cst.CSTNode]) -> cst.If | None:
        """The one ``if __name__ == "__main__":`` block all ``refs`` are in, if any."""
        blocks = set()
        for ref in refs:
            node: cst.CSTNode | None = ref
            while node is not None and node not in self.main_blocks:
                node = self.parents.get(node)
            if node is None:
                return None
            blocks.add(node)
        if len(blocks) == 1:
            block = blocks.pop()
            assert isinstance(block, cst.If)
            return block
        return None

    # -- from X import ... ----------------------------------------------------------------------
    def _import_from(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None:
            return
        module = code_of(node.module, 1000)
        if module.split(".")[0] == "locust_plugins":
            self.warn(node, "locust_plugins is an add-on for Locust: it needs Locust, so its helpers need hand work")
            return
        gevent = module.split(".")[0] == "gevent"
        if not (is_locust(module) or gevent):
            return
        if isinstance(node.names, cst.ImportStar):
            self.warn(node, f"from {module} import * kept: import the names you use from loadgen instead")
            return
        mapped: list[tuple[cst.ImportAlias, str, str]] = []  # (alias, loadgen name, local name)
        kept: list[cst.ImportAlias] = []
        main_only: list[cst.ImportAlias] = []  # used only in the `if __name__ == "__main__":` block it is in
        for alias in node.names:
            name = code_of(alias.name, 1000)
            local = code_of(alias.asname.name, 1000) if alias.asname is not None else name
            refs = self.references(node, local)
            if not gevent and name in LOADGEN_NAMES:
                target = LOADGEN_NAMES[name]
                new_local = local if alias.asname is not None else self.local_for(target)
                if new_local != local:
                    for ref in refs:
                        if isinstance(ref, cst.Name):
                            self.plan.renames[ref] = new_local
                if name in MAPPED_WITH_WARNING:
                    for ref in refs:
                        self.warn(ref, MAPPED_WITH_WARNING[name])
                if all(m[2] != new_local for m in mapped):
                    mapped.append((alias, target, new_local))
                continue
            left = [r for r in refs if r not in self.consumed]
            if not left:
                continue  # unused, or every use was converted
            for ref in left:
                self.warn(ref, _GEVENT.format(code_of(self._use(ref))) if gevent
                          else f"{code_of(self._use(ref))}: {locust_reason(f'{module}.{name}')}")
            block = self.main_block(left)
            if block is not None and self.main_block([node]) is block:
                main_only.append(alias)  # already where it is used
            elif block is not None:
                moved = cst.ImportFrom(module=node.module.deep_clone(),
                                       names=[alias.with_changes(comma=cst.MaybeSentinel.DEFAULT)])
                self.plan.main_imports.setdefault(block, []).append(moved)
            else:
                kept.append(alias)
        new: list[cst.BaseSmallStatement] = []
        if mapped:
            new.append(self._loadgen_from(node, mapped, in_place=not (kept or main_only)))
        if kept or main_only:
            new.append(node.with_changes(names=_commas(kept + main_only, bool(node.lpar))))
            if not gevent and kept:
                self.warn(node, f"still imports {', '.join(code_of(a.name) for a in kept)} from {module}: loadgen has "
                          "no equivalent, so this file needs Locust installed until the marked uses are rewritten")
        if len(new) == 1 and new[0] is node:
            return
        self.plan.imports[node] = new

    def _use(self, ref: cst.CSTNode) -> cst.CSTNode:
        """The expression a reference stands in: ``gevent.spawn`` for ``gevent``."""
        node = ref
        while isinstance(parent := self.parents.get(node), cst.Attribute) and parent.value is node:
            node = parent
        return node

    def _loadgen_from(self, node: cst.ImportFrom, mapped: list[tuple[cst.ImportAlias, str, str]], in_place: bool
                      ) -> cst.ImportFrom:
        """``from loadgen import ...``: the original statement rewritten (its layout kept) when nothing else stays."""
        aliases = []
        for alias, target, local in mapped:
            asname = None if local == target else cst.AsName(name=cst.Name(local))
            if in_place:
                aliases.append(alias.with_changes(name=cst.Name(target), asname=asname))
            else:
                aliases.append(cst.ImportAlias(name=cst.Name(target), asname=asname))
        if in_place:
            return node.with_changes(module=cst.Name("loadgen"), names=_commas(aliases, bool(node.lpar)))
        return cst.ImportFrom(module=cst.Name("loadgen"), names=aliases)

    # -- import X ----------------------------------------------------------------------------------
    def _import(self, node: cst.Import) -> None:
        mapped: list[tuple[cst.ImportAlias, str, str]] = []
        kept: list[cst.ImportAlias] = []
        changed = False
        for alias in node.names:
            dotted = code_of(alias.name, 1000)
            root = dotted.split(".")[0]
            if root == "locust_plugins":
                self.warn(node, "locust_plugins is an add-on for Locust: it needs Locust, so its helpers need hand work")
            if root not in ("locust", "gevent"):
                kept.append(alias)
                continue
            local = code_of(alias.asname.name, 1000) if alias.asname is not None else root
            left = []
            for ref in self.references(node, local):
                if ref in self.consumed:
                    continue
                if root == "locust" and (hit := self._mapped_attribute(ref)):
                    attr, target = hit
                    new_local = self.local_for(target)
                    self.plan.replaced[attr] = cst.Name(new_local)
                    if all(m[2] != new_local for m in mapped):
                        mapped.append((alias, target, new_local))
                    continue
                left.append(ref)
            for ref in left:
                use = self._use(ref)
                self.warn(ref, _GEVENT.format(code_of(use)) if root == "gevent"
                          else f"{code_of(use)}: {locust_reason(code_of(use, 1000))}")
            if left:
                kept.append(alias)
                if root == "locust":
                    self.warn(node, f"still imports {dotted}: this file needs Locust installed until the marked uses "
                              "are rewritten")
            else:
                changed = True
        if not changed and not mapped:
            return
        new: list[cst.BaseSmallStatement] = []
        if mapped:
            new.append(cst.ImportFrom(module=cst.Name("loadgen"), names=[
                cst.ImportAlias(name=cst.Name(target), asname=None if local == target else cst.AsName(cst.Name(local)))
                for _, target, local in mapped
            ]))
        if kept:
            new.append(node.with_changes(names=_commas(kept, False)))
        self.plan.imports[node] = new

    def _mapped_attribute(self, ref: cst.CSTNode) -> tuple[cst.Attribute, str] | None:
        """For ``locust.HttpUser`` (``locust`` imported as a module): the attribute and loadgen's name for it."""
        node = ref
        while isinstance(parent := self.parents.get(node), cst.Attribute) and parent.value is node:
            name = parent.attr.value
            if name in LOADGEN_NAMES:
                return parent, LOADGEN_NAMES[name]
            node = parent
        return None


def _commas(aliases: list[cst.ImportAlias], parenthesized: bool) -> list[cst.ImportAlias]:
    """``aliases`` with a comma after each but the last (a trailing one only inside parentheses)."""
    out = []
    for i, a in enumerate(aliases):
        last = i == len(aliases) - 1
        if last and not parenthesized:
            out.append(a.with_changes(comma=cst.MaybeSentinel.DEFAULT))
        elif not last and a.comma is cst.MaybeSentinel.DEFAULT:
            out.append(a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))))
        else:
            out.append(a)
    return out
