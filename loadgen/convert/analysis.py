"""The converter's first pass: what each class and function of a locustfile is, and where things happen.

One walk over the tree with libcst's metadata (scopes, qualified names,
positions) records classes, functions, calls and the places that need a look
afterwards (sites); nothing is decided here that needs the whole file, because
a class's kind depends on classes defined after the code that uses it.
decide.py reads these facts and writes the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import (
    Assignment,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    QualifiedNameSource,
    ScopeProvider,
)

from .names import (
    CLIENT_ATTRIBUTES,
    EVENTS,
    HTTP_METHODS,
    LOCUST_ONLY_METHODS,
    SHAPE_BASES,
    SHAPE_ONLY_METHODS,
    TASKSET_BASES,
    USER_BASES,
    event_reason,
)

__all__ = [
    "ClassInfo", "FuncInfo", "Site", "ClientSite", "CallSite", "ResponseUse", "ResponseAttr", "Facts", "collect",
    "is_locust", "code_of",
]

_EMPTY = cst.Module(body=[])


def code_of(node: cst.CSTNode, limit: int = 60) -> str:
    """A node's source on one line, shortened: for warnings."""
    text = " ".join(_EMPTY.code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_locust(qualified: str) -> bool:
    """``locust`` itself or a name inside it (``locust.runners.MasterRunner``), not ``locust_plugins``."""
    return qualified == "locust" or qualified.startswith("locust.")


@dataclass(eq=False)
class ClassInfo:
    """A class of the file and what it derives from."""

    node: cst.ClassDef
    bases: list[ClassInfo] = field(default_factory=list)  # defined in this file
    locust_bases: set[str] = field(default_factory=set)  # last parts: HttpUser, TaskSet, LoadTestShape
    foreign_bases: list[str] = field(default_factory=list)  # from other modules, as written
    methods: dict[str, list[FuncInfo]] = field(default_factory=dict)
    task_entries: list[cst.BaseExpression] = field(default_factory=list)  # the elements of `tasks = ...`
    has_task_methods: bool = False
    sets_client: str | None = None  # "call" (self.client = SomeClient(...)) or "other"
    attrs: list[tuple[str, cst.CSTNode, int]] = field(default_factory=list)  # class-level names set: (name, stmt, line)

    @property
    def name(self) -> str:
        return self.node.name.value

    def ancestors(self) -> list[ClassInfo]:
        """In-file ancestors, nearest first, each once."""
        out: list[ClassInfo] = []
        todo = list(self.bases)
        while todo:
            c = todo.pop(0)
            if c not in out and c is not self:
                out.append(c)
                todo.extend(c.bases)
        return out

    def kinds(self) -> set[str]:
        """Locust bases of this class and its in-file ancestors."""
        out = set(self.locust_bases)
        for c in self.ancestors():
            out |= c.locust_bases
        return out

    @property
    def kind(self) -> str:
        """``shape``, ``user``, ``taskset``, ``tasks`` (tasks on a base from elsewhere) or ``other``."""
        kinds = self.kinds()
        if kinds & SHAPE_BASES:
            return "shape"
        if kinds & USER_BASES:
            return "user"
        if kinds & TASKSET_BASES:
            return "taskset"
        if self.has_task_methods or self.task_entries or any(c.has_task_methods for c in self.ancestors()):
            return "tasks"
        return "other"

    @property
    def runs_tasks(self) -> bool:
        return self.kind in ("user", "taskset", "tasks")

    @property
    def fast(self) -> bool:
        return "FastHttpUser" in self.kinds()

    @property
    def custom_client(self) -> bool:
        """Its ``self.client`` is not Locust's HTTP client (it sets its own)."""
        family = [self, *self.ancestors()]
        if self.kind in ("user", "tasks"):
            return any(c.sets_client for c in family)
        return any(c.sets_client == "call" for c in family)

    def defines(self, method: str) -> bool:
        return any(method in c.methods for c in [self, *self.ancestors()])


@dataclass(eq=False)
class FuncInfo:
    """A ``def`` of the file."""

    node: cst.FunctionDef
    cls: ClassInfo | None  # the class it is a method of
    parent: FuncInfo | None  # the function it is nested in
    first_param: str | None
    decorators: list[tuple[cst.Decorator, str]] = field(default_factory=list)  # (decorator, qualified name or code)
    params: list[str] = field(default_factory=list)  # positional parameters, in order (self included)
    is_task: bool = False
    has_yield: bool = False
    client_sites: list[ClientSite] = field(default_factory=list)
    sleep_sites: list[Site] = field(default_factory=list)
    call_sites: list[CallSite] = field(default_factory=list)
    #: For ``__init__``: where each parameter is read (to pass Locust's arguments through).
    param_reads: dict[str, list[cst.CSTNode]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.node.name.value

    @property
    def label(self) -> str:
        return f"{self.cls.name}.{self.name}" if self.cls else self.name


@dataclass(eq=False)
class Site:
    """A place in the code: the node, its statement (for a marker comment), its line, the code it runs in."""

    node: cst.CSTNode
    stmt: cst.CSTNode
    line: int
    owner: FuncInfo | None  # None: module level, a class body or a lambda (never async)
    where: str  # for an owner of None: "at module level", "in a class body", "in a lambda"
    cls: ClassInfo | None  # the class whose method this code is in (through nested functions)
    awaited: bool = False  # already the operand of an `await`


@dataclass(eq=False)
class ClientSite(Site):
    """A call of the client: ``<receiver>.client.<method>(...)``."""

    method: str = ""
    own: bool = False  # the receiver is the method's own `self` (cls's client)
    with_node: cst.With | None = None  # the `with` it is the only item of
    override: cst.BaseExpression | None = None  # the name rename_request / request_name gives it
    multi_with: bool = False  # an item of a `with` of several items
    param: str | None = None  # `client.get()` on a parameter: the client if callers pass one (decide.py)


@dataclass(eq=False)
class CallSite(Site):
    """A call that may reach a function of this file."""

    by_name: list[cst.FunctionDef] = field(default_factory=list)
    family: tuple[ClassInfo, str] | None = None  # self.m(): m in cls's family
    # self.user.m() in a task set, l.m() in a task function: m of any user or task set, if `via` runs tasks
    any_task: str | None = None
    via: ClassInfo | FuncInfo | None = None
    ancestors: tuple[ClassInfo, str] | None = None  # super().m()
    with_node: cst.With | None = None  # the `with` it is the only item of


@dataclass(eq=False)
class ResponseUse(Site):
    """``r.success()`` or ``r.failure(...)`` on the response of a client ``with``."""

    with_node: cst.With | None = None
    target: str = ""
    method: str = ""


@dataclass(eq=False)
class ResponseAttr(Site):
    """``r.<attr>`` on a response: of a client ``with`` (``with_node``) or assigned from a client call."""

    with_node: cst.With | None = None
    source: cst.Call | None = None  # the call the response came from


@dataclass(eq=False)
class Facts:
    """Everything the first pass saw."""

    classes: list[ClassInfo] = field(default_factory=list)
    functions: list[FuncInfo] = field(default_factory=list)
    by_def: dict[cst.FunctionDef, FuncInfo] = field(default_factory=dict)
    client_sites: list[ClientSite] = field(default_factory=list)
    sleep_sites: list[Site] = field(default_factory=list)
    call_sites: list[CallSite] = field(default_factory=list)
    responses: list[ResponseUse] = field(default_factory=list)
    response_attrs: list[ResponseAttr] = field(default_factory=list)
    param_clients: list[ClientSite] = field(default_factory=list)  # client.get() on a parameter named anything
    request_names: list[Site] = field(default_factory=list)  # `x.client.request_name = ...` (an Assign)
    rename_withs: list[tuple[cst.With, Site]] = field(default_factory=list)
    client_attrs: list[tuple[Site, bool]] = field(default_factory=list)  # (site, own receiver): x.client.<unknown>
    bare_clients: list[tuple[Site, bool]] = field(default_factory=list)  # x.client handed to other code
    get_dicts: list[cst.Attribute] = field(default_factory=list)  # x.client.cookies.get_dict
    environment: list[Site] = field(default_factory=list)  # environment.<attr> in listeners
    user_environment: list[Site] = field(default_factory=list)  # self.environment.<attr>
    locust_only: list[tuple[Site, str]] = field(default_factory=list)  # self.wait(), self.rest(), ...
    event_sites: list[tuple[Site, str]] = field(default_factory=list)  # (site, why)
    listener_drops: list[tuple[cst.Decorator, FuncInfo, str, Site]] = field(default_factory=list)
    master_checks: list[tuple[cst.Call, cst.CSTNode]] = field(default_factory=list)  # isinstance(x.runner, MasterRunner)
    tuples: list[Site] = field(default_factory=list)  # 3-tuples (a shape's tick with user classes)
    super_inits: list[tuple[FuncInfo, cst.Call]] = field(default_factory=list)
    main_blocks: list[cst.If] = field(default_factory=list)


_Ctx = ClassInfo | FuncInfo | cst.Lambda


class _Collector(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (ScopeProvider, QualifiedNameProvider, PositionProvider, ParentNodeProvider)

    def __init__(self) -> None:
        super().__init__()
        self.facts = Facts()
        self._stmts: list[cst.CSTNode] = []
        self._ctx: list[_Ctx] = []
        self._classes: dict[cst.ClassDef, ClassInfo] = {}
        self._responses: list[tuple[cst.With, str]] = []  # response names of the `with`s we are in
        self._results: dict[FuncInfo | None, dict[str, cst.Call]] = {}  # r = self.client.get(...), per function
        self._renames: list[cst.BaseExpression] = []  # rename_request names we are in
        self._request_name: dict[FuncInfo | None, cst.BaseExpression | None] = {}
        self._dropping: cst.Decorator | None = None

    # -- helpers -------------------------------------------------------------------------------
    def qualified(self, node: cst.CSTNode, source: QualifiedNameSource | None = QualifiedNameSource.IMPORT) -> set[str]:
        names = self.get_metadata(QualifiedNameProvider, node, set())
        return {q.name for q in names if source is None or q.source == source}

    def locust_name(self, node: cst.CSTNode) -> str | None:
        """The Locust name ``node`` refers to (``locust.HttpUser``), if any."""
        for q in self.qualified(node):
            if is_locust(q):
                return q
        return None

    def line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.get_metadata(ParentNodeProvider, node, None)

    def owner(self) -> tuple[FuncInfo | None, str]:
        """The function the current code runs in, or None and where it runs instead."""
        if not self._ctx:
            return None, "at module level"
        top = self._ctx[-1]
        if isinstance(top, FuncInfo):
            return top, ""
        return None, "in a lambda" if isinstance(top, cst.Lambda) else "in a class body"

    def method_class(self) -> ClassInfo | None:
        """The class whose method the current code is in (through nested functions and lambdas)."""
        for c in reversed(self._ctx):
            if isinstance(c, FuncInfo) and c.cls is not None:
                return c.cls
            if isinstance(c, ClassInfo):
                return None
        return None

    def receiver(self, name: cst.Name) -> tuple[str, ClassInfo | FuncInfo] | None:
        """What ``name`` is when it is a function's first parameter: a method's ``self`` or a task function's user."""
        for c in reversed(self._ctx):
            if isinstance(c, FuncInfo) and c.first_param == name.value:
                return ("method", c.cls) if c.cls is not None else ("func", c)
            if isinstance(c, ClassInfo):
                return None
        return None

    def site(self, node: cst.CSTNode, kind: type[Site] = Site, **extra: object) -> Site:
        owner, where = self.owner()
        awaited = isinstance(self.parent(node), cst.Await)
        return kind(node, self._stmts[-1], self.line(node), owner, where, self.method_class(), awaited,
                    **extra)  # type: ignore[arg-type]

    def client_of(self, expr: cst.BaseExpression) -> tuple[cst.BaseExpression, bool] | None:
        """For ``<recv>.client``: (recv, whether recv is the method's own self)."""
        if isinstance(expr, cst.Attribute) and expr.attr.value == "client":
            recv = expr.value
            own = isinstance(recv, cst.Name) and (r := self.receiver(recv)) is not None and r[0] == "method"
            return recv, bool(own)
        return None

    def _resolve_class(self, expr: cst.BaseExpression) -> ClassInfo | None:
        if not isinstance(expr, cst.Name):
            return None
        for a in self.get_metadata(ScopeProvider, expr)[expr.value]:
            if isinstance(a, Assignment) and isinstance(a.node, cst.ClassDef) and a.node in self._classes:
                return self._classes[a.node]
        return None

    # -- statements and scopes -----------------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self._stmts.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self._stmts.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        info = ClassInfo(node)
        for arg in node.bases:
            q = self.locust_name(arg.value)
            in_file = self._resolve_class(arg.value)
            if q is not None:
                info.locust_bases.add(q.rpartition(".")[2])
            elif in_file is not None:
                info.bases.append(in_file)
            elif not (isinstance(arg.value, cst.Name) and arg.value.value == "object"):
                info.foreign_bases.append(code_of(arg.value))
        self._classes[node] = info
        self.facts.classes.append(info)
        self._ctx.append(info)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._ctx.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        top = self._ctx[-1] if self._ctx else None
        cls = top if isinstance(top, ClassInfo) else None
        parent = next((c for c in reversed(self._ctx) if isinstance(c, FuncInfo)), None)
        params = node.params.posonly_params or node.params.params
        decorators = []
        for d in node.decorators:
            expr = d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator
            decorators.append((d, self.locust_name(expr) or next(iter(self.qualified(expr, None)), code_of(expr))))
        static = any(q in ("staticmethod", "builtins.staticmethod") for _, q in decorators)
        first = params[0].name.value if params and not static else None
        info = FuncInfo(node, cls, parent, first, decorators)
        info.params = [p.name.value for p in (*node.params.posonly_params, *node.params.params)]
        info.is_task = any(is_locust(q) and q.rpartition(".")[2] == "task" for _, q in decorators)
        if cls is not None:
            cls.methods.setdefault(info.name, []).append(info)
            cls.has_task_methods |= info.is_task
        self.facts.functions.append(info)
        self.facts.by_def[node] = info
        self._ctx.append(info)
        for d, q in decorators:
            parts = q.split(".")
            if is_locust(q) and len(parts) >= 3 and parts[-3] == "events" and parts[-1] == "add_listener":
                if parts[-2] not in EVENTS:
                    self.facts.listener_drops.append((d, info, parts[-2], self.site(d)))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        info = self.facts.by_def[original_node]
        self._ctx.pop()
        self._request_name.pop(info, None)
        self._results.pop(info, None)
        if info.name == "__init__":
            scope = self.get_metadata(ScopeProvider, original_node.body, None)
            if scope is not None:
                p = original_node.params
                for param in (*p.posonly_params, *p.params, *p.kwonly_params):
                    reads = [acc.node for a in scope.assignments[param.name.value] for acc in a.references]
                    info.param_reads[param.name.value] = reads

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._ctx.append(node)

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._ctx.pop()

    def visit_Decorator(self, node: cst.Decorator) -> None:
        if any(d is node for d, *_ in self.facts.listener_drops):
            self._dropping = node

    def leave_Decorator(self, original_node: cst.Decorator) -> None:
        if self._dropping is original_node:
            self._dropping = None

    def visit_Yield(self, node: cst.Yield) -> None:
        owner, _ = self.owner()
        if owner is not None:
            owner.has_yield = True

    def visit_If(self, node: cst.If) -> None:
        t = node.test
        if (
            not self._ctx and isinstance(t, cst.Comparison) and isinstance(t.left, cst.Name)
            and t.left.value == "__name__" and len(t.comparisons) == 1
            and isinstance(t.comparisons[0].operator, cst.Equal)
            and isinstance(t.comparisons[0].comparator, cst.SimpleString)
            and t.comparisons[0].comparator.evaluated_value == "__main__"
        ):
            self.facts.main_blocks.append(node)

    # -- assignments -----------------------------------------------------------------------------
    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._assigned(t.target, node.value, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._assigned(node.target, node.value, node)

    def _assigned(self, target: cst.BaseExpression, value: cst.BaseExpression | None, stmt: cst.CSTNode) -> None:
        top = self._ctx[-1] if self._ctx else None
        if isinstance(target, cst.Name) and isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
                and value.func.attr.value in HTTP_METHODS and self.client_of(value.func.value) is not None:
            self._results.setdefault(self.owner()[0], {})[target.value] = value
        elif isinstance(target, cst.Name):
            self._results.get(self.owner()[0], {}).pop(target.value, None)
        if isinstance(top, ClassInfo) and isinstance(target, cst.Name):
            top.attrs.append((target.value, self._stmts[-1], self.line(target)))
            if target.value == "tasks" and value is not None:
                if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
                    top.task_entries.extend(e.value for e in value.elements if isinstance(e, cst.Element))
                elif isinstance(value, cst.Dict):
                    top.task_entries.extend(e.key for e in value.elements if isinstance(e, cst.DictElement))
            return
        if not isinstance(target, cst.Attribute):
            return
        if target.attr.value == "client" and isinstance(target.value, cst.Name):
            r = self.receiver(target.value)
            if r is not None and r[0] == "method" and isinstance(r[1], ClassInfo):
                r[1].sets_client = "call" if isinstance(value, cst.Call) else (r[1].sets_client or "other")
        elif target.attr.value == "request_name" and value is not None and self.client_of(target.value) is not None:
            owner, _ = self.owner()
            self._request_name[owner] = None if isinstance(value, cst.Name) and value.value == "None" else value
            self.facts.request_names.append(self.site(stmt))

    # -- with ------------------------------------------------------------------------------------
    def visit_With(self, node: cst.With) -> None:
        if len(node.items) != 1 or not isinstance(node.items[0].item, cst.Call):
            return
        call = node.items[0].item
        # The response of a client call (or of a function returning one) named by `as`: r.success(), r.failure().
        target = node.items[0].asname
        if target is not None and isinstance(target.name, cst.Name):
            self._responses.append((node, target.name.value))
        func = call.func
        if not isinstance(func, cst.Attribute) or self.client_of(func.value) is None:
            return
        if func.attr.value == "rename_request" and call.args:
            self._renames.append(call.args[0].value)
            self.facts.rename_withs.append((node, self.site(node)))

    def leave_With(self, original_node: cst.With) -> None:
        if self._responses and self._responses[-1][0] is original_node:
            self._responses.pop()
        if self.facts.rename_withs and self.facts.rename_withs[-1][0] is original_node and self._renames:
            self._renames.pop()

    # -- calls -----------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            client = self.client_of(func.value)
            if client is not None and func.attr.value in HTTP_METHODS:
                self._client_call(node, func.attr.value, client[1])
                return
            owner = self.owner()[0]
            if (
                func.attr.value in HTTP_METHODS and isinstance(func.value, cst.Name) and owner is not None
                and func.value.value in owner.params
                and not (owner.cls is not None and func.value.value == owner.first_param)  # a method's self
            ):
                self._client_call(node, func.attr.value, False, param=func.value.value)
                return
            if isinstance(func.value, cst.Name) and func.attr.value in ("success", "failure"):
                for w, name in reversed(self._responses):
                    if name == func.value.value:
                        use = self.site(node, ResponseUse, with_node=w, target=name, method=func.attr.value)
                        self.facts.responses.append(use)  # type: ignore[arg-type]
                        break
        for q in self.qualified(func):
            if q in ("time.sleep", "gevent.sleep"):
                site = self.site(node)
                self.facts.sleep_sites.append(site)
                if site.owner is not None:
                    site.owner.sleep_sites.append(site)
                return
        if isinstance(func, cst.Name) and func.value == "isinstance" and len(node.args) == 2:
            kind = self.locust_name(node.args[1].value)
            runner = node.args[0].value
            if kind is not None and kind.endswith(".MasterRunner") and isinstance(runner, cst.Attribute) \
                    and runner.attr.value == "runner":
                self.facts.master_checks.append((node, node.args[1].value))
                return
        self._call(node)

    def _client_call(self, node: cst.Call, method: str, own: bool, param: str | None = None) -> None:
        parent = self.parent(node)
        with_node = None
        multi = False
        if isinstance(parent, cst.WithItem):
            w = self.parent(parent)
            if isinstance(w, cst.With) and len(w.items) == 1:
                with_node = w
            else:
                multi = True
        override = self._renames[-1] if self._renames else self._request_name.get(self.owner()[0])
        site = self.site(node, ClientSite, method=method, own=own, with_node=with_node, override=override,
                         multi_with=multi, param=param)
        assert isinstance(site, ClientSite)
        if param is not None:
            self.facts.param_clients.append(site)  # a client only if callers pass one: decided later
            return
        self.facts.client_sites.append(site)
        if site.owner is not None:
            site.owner.client_sites.append(site)

    def _call(self, node: cst.Call) -> None:
        func = node.func
        site = self.site(node, CallSite)
        assert isinstance(site, CallSite)
        parent = self.parent(node)
        if isinstance(parent, cst.WithItem) and isinstance(w := self.parent(parent), cst.With) and len(w.items) == 1:
            site.with_node = w
        if isinstance(func, cst.Name):
            for a in self.get_metadata(ScopeProvider, func)[func.value]:
                if isinstance(a, Assignment) and isinstance(a.node, cst.FunctionDef):
                    site.by_name.append(a.node)
        elif isinstance(func, cst.Attribute):
            method = func.attr.value
            value = func.value
            if isinstance(value, cst.Name):
                r = self.receiver(value)
                if r is not None and r[0] == "method" and isinstance(r[1], ClassInfo):
                    site.family = (r[1], method)
                elif r is not None:
                    site.any_task, site.via = method, r[1]
                elif (c := self._resolve_class(value)) is not None:
                    site.family = (c, method)
            elif (
                isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name)
                and value.attr.value in ("user", "parent", "locust") and (r := self.receiver(value.value)) is not None
            ):
                site.any_task, site.via = method, r[1]
            elif (
                isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "super"
                and (cls := self.method_class()) is not None
            ):
                site.ancestors = (cls, method)
                owner = site.owner
                if method == "__init__" and owner is not None and owner.name == "__init__":
                    self.facts.super_inits.append((owner, node))
        if not (site.by_name or site.family or site.any_task or site.ancestors):
            return
        self.facts.call_sites.append(site)
        if site.owner is not None:
            site.owner.call_sites.append(site)

    # -- attributes ------------------------------------------------------------------------------
    def visit_Attribute(self, node: cst.Attribute) -> None:
        value = node.value
        attr = node.attr.value
        parent = self.parent(node)
        called = isinstance(parent, cst.Call) and parent.func is node
        if isinstance(value, cst.Name) and attr not in ("success", "failure"):
            source = self._results.get(self.owner()[0], {}).get(value.value)
            if source is not None:
                self.facts.response_attrs.append(self.site(node, ResponseAttr, source=source))  # type: ignore[arg-type]
            else:
                for w, name in reversed(self._responses):
                    if name == value.value:
                        item = w.items[0].item
                        self.facts.response_attrs.append(self.site(
                            node, ResponseAttr, with_node=w, source=item if isinstance(item, cst.Call) else None,
                        ))  # type: ignore[arg-type]
                        break
        # Locust's events: one loadgen lacks, or fire() (which records a result in Locust's statistics).
        if self.locust_name(value) == "locust.events" and attr not in EVENTS and self._dropping is None:
            self.facts.event_sites.append((self.site(node), event_reason(attr)))
        if attr == "fire" and called and isinstance(value, cst.Attribute):
            events = value.value
            if self.locust_name(events) == "locust.events" or (
                isinstance(events, cst.Attribute) and events.attr.value == "events"
            ):
                why = (
                    f"{code_of(node)}() reports a result to Locust's statistics: loadgen records only the requests "
                    "its client makes, so this is not counted" if value.attr.value == "request"
                    else f"{code_of(node)}(): a scenario cannot fire loadgen's events"
                )
                self.facts.event_sites.append((self.site(node), why))
        # environment.<x> in a listener; self.environment.<x> in a user.
        if isinstance(value, cst.Name) and value.value == "environment":
            self.facts.environment.append(self.site(node))
        elif isinstance(value, cst.Attribute) and value.attr.value == "environment" and self.method_class() is not None:
            self.facts.user_environment.append(self.site(node))
        # The client: what it has, cookies.get_dict(), handed to other code.
        client = self.client_of(value)
        if client is not None and attr not in HTTP_METHODS and attr not in CLIENT_ATTRIBUTES:
            self.facts.client_attrs.append((self.site(node), client[1]))
        if attr == "get_dict" and isinstance(value, cst.Attribute) and value.attr.value == "cookies" \
                and self.client_of(value.value) is not None:
            self.facts.get_dicts.append(node)
        if attr == "client" and not isinstance(parent, cst.Attribute) and self.client_of(node) is not None:
            if not isinstance(parent, (cst.AssignTarget, cst.AnnAssign, cst.Del)) and self._ctx:
                own = self.client_of(node)
                self.facts.bare_clients.append((self.site(node), bool(own and own[1])))
        # Methods of Locust's User, TaskSet and LoadTestShape that loadgen's lack.
        cls = self.method_class()
        if called and cls is not None:
            is_self = isinstance(value, cst.Name) and (r := self.receiver(value)) is not None and r[0] == "method"
            is_super = isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "super"
            if (is_self and not cls.defines(attr)) or is_super:
                if attr in LOCUST_ONLY_METHODS or attr in SHAPE_ONLY_METHODS:
                    self.facts.locust_only.append((self.site(node), attr))

    def visit_Tuple(self, node: cst.Tuple) -> None:
        owner, _ = self.owner()
        if owner is not None and owner.name == "tick" and len(node.elements) == 3:
            self.facts.tuples.append(self.site(node))


def collect(wrapper: cst.MetadataWrapper) -> Facts:
    """The first pass over ``wrapper.module``."""
    collector = _Collector()
    wrapper.visit(collector)
    return collector.facts
