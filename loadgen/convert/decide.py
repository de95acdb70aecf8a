"""The converter's decisions: which functions become async, what is awaited, what each client call becomes.

Reads the first pass's :class:`~loadgen.convert.analysis.Facts` and fills the
:class:`~loadgen.convert.plan.Plan`.

Which functions become ``async def``: every task (``@task``, the functions a
``tasks`` attribute names, ``on_start``/``on_stop`` of users and task sets),
and every function that makes requests, sleeps on a task's path, or calls such
a function, transitively within the file. Calls are followed by name (a
function), through ``self.m()`` (the methods ``m`` of the class and its
in-file relatives), ``self.user.m()``/``self.parent.m()`` (``m`` of any user
or task set) and ``super().m()``; ``helper(self.client)`` makes the helper's
calls on that parameter the client's. Methods that such a call can reach are
made async together, or none is. A function Python or loadgen calls synchronously
(``__init__``, a generator, a decorated helper, ``wait_time``, ``tick``)
stays as it is, and whatever it cannot await is listed.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from urllib.parse import urlencode, urlsplit

import libcst as cst

from .analysis import (
    CallSite,
    ClassInfo,
    ClientSite,
    Facts,
    FuncInfo,
    ResponseAttr,
    ResponseUse,
    Site,
    code_of,
    is_locust,
)
from .names import (
    CLIENT_HINTS,
    DROPPED_KEYWORDS,
    FAST_POSITIONAL,
    FASTHTTP_SETTINGS,
    KEPT_KEYWORDS,
    LOCUST_ONLY_METHODS,
    POSITIONAL,
    RESPONSE_ATTRIBUTES,
    RESPONSE_HINTS,
    SHAPE_ONLY_METHODS,
    event_reason,
    locust_reason,
)
from .plan import CallFix, Plan, WithFix

__all__ = ["decide"]

_LOADGEN_ASYNC = ("on_start", "on_stop")  # loadgen's User and TaskSet define these as async
_SYNC_BY_LOADGEN = ("wait_time", "tick")  # loadgen calls these and uses their value at once
_PLAIN_DECORATORS = ("staticmethod", "classmethod", "builtins.staticmethod", "builtins.classmethod")

_ENVIRONMENT: dict[str, str] = {
    "runner": locust_reason("locust.runners.Runner"),
    "web_ui": "loadgen has no web UI",
    "parsed_options": "loadgen's environment has no parsed_options: its `options` mapping has loadgen's option "
    "keys, and custom command-line options do not exist (read environment variables)",
    "events": "loadgen's environment has no events: use `from loadgen import events`",
    "stats": "loadgen's environment has no stats: its results are in the run's summary",
}


def decide(facts: Facts, plan: Plan, parents: Mapping[cst.CSTNode, cst.CSTNode], line: Callable[[cst.CSTNode], int]
           ) -> set[cst.CSTNode]:
    """Fill ``plan`` from ``facts``; returns the nodes the changes consumed (a converted sleep's ``gevent``, ...)."""
    d = _Decider(facts, plan, parents, line)
    d.client_parameters()
    d.classes()
    d.asyncs()
    d.calls()
    d.responses()
    d.attributes()
    d.inits()
    return d.consumed


class _Decider:
    def __init__(self, facts: Facts, plan: Plan, parents: Mapping[cst.CSTNode, cst.CSTNode],
                 line: Callable[[cst.CSTNode], int]) -> None:
        self.facts = facts
        self.plan = plan
        self.parents = parents
        self.line = line
        self.consumed: set[cst.CSTNode] = set()
        users = [c for c in facts.classes if c.kind == "user"]
        self._all_custom = bool(users) and all(c.custom_client for c in users)
        self._all_fast = bool(users) and all(c.fast for c in users)
        self.forced = {f for f in facts.functions if self._forced(f)}
        self.targets: dict[CallSite, list[FuncInfo]] = {s: self._targets(s) for s in facts.call_sites}
        self.async_funcs: set[FuncInfo] = set()
        self.client_args: set[cst.CSTNode] = set()  # `self.client` handed to a helper of this file

    def warn(self, site: Site, why: str) -> None:
        self.plan.notes.warn(site.line, why, site.stmt)

    # -- what things are -----------------------------------------------------------------------
    def http(self, site: Site, own: bool) -> bool:
        """Whether ``<x>.client`` at ``site`` is Locust's HTTP client (not a custom one)."""
        cls = site.cls
        if own and cls is not None and cls.kind != "taskset":
            return not cls.custom_client
        return not self._all_custom

    def fast(self, site: Site) -> bool:
        cls = site.cls
        if cls is not None and cls.kind in ("user", "tasks"):
            return cls.fast
        return self._all_fast

    def _forced(self, f: FuncInfo) -> bool:
        if f.is_task:
            return True
        cls = f.cls
        if cls is not None and cls.runs_tasks and f.name in _LOADGEN_ASYNC:
            return True
        for c in self.facts.classes:
            if not c.runs_tasks:
                continue
            for entry in c.task_entries:
                if isinstance(entry, cst.Name) and entry.value == f.name and (f.cls is None or f.cls is c):
                    return True
        return False

    def not_async_why(self, f: FuncInfo) -> str | None:
        """Why ``f`` cannot become ``async def``, or None."""
        if f.node.asynchronous is not None:
            return None
        if f.name.startswith("__") and f.name.endswith("__"):
            return f"{f.label} is called by Python and cannot be async"
        if f.has_yield:
            return f"{f.label} is a generator"
        if f.name in _SYNC_BY_LOADGEN and f.cls is not None:
            return f"loadgen calls {f.label} synchronously"
        for d, q in f.decorators:
            if q in _PLAIN_DECORATORS or (is_locust(q) and q.rpartition(".")[2] in ("task", "tag")) \
                    or _async_listener(q):
                continue
            return f"{f.label} is decorated with @{code_of(d.decorator)}"
        return None

    def _family(self, cls: ClassInfo) -> list[ClassInfo]:
        """``cls``, its in-file ancestors and descendants: the classes a ``self.m()`` may reach."""
        out = [cls, *cls.ancestors()]
        out += [c for c in self.facts.classes if cls in c.ancestors() and c not in out]
        return out

    def _targets(self, s: CallSite) -> list[FuncInfo]:
        by_def = self.facts.by_def
        if s.by_name:
            return [by_def[n] for n in s.by_name if n in by_def]
        classes: list[ClassInfo] = []
        method = ""
        if s.family is not None:
            classes, method = self._family(s.family[0]), s.family[1]
        elif s.ancestors is not None:
            classes, method = s.ancestors[0].ancestors(), s.ancestors[1]
        elif s.any_task is not None:
            via = s.via
            if (isinstance(via, ClassInfo) and via.runs_tasks) or (isinstance(via, FuncInfo) and via in self.forced):
                classes, method = [c for c in self.facts.classes if c.runs_tasks], s.any_task
        return [f for c in classes for f in c.methods.get(method, [])]

    def _loadgen_async(self, s: CallSite) -> bool:
        """``super().on_start()`` or ``self.on_stop()`` reaching loadgen's own (async) method."""
        if s.ancestors is not None:
            cls, method = s.ancestors
            return method in _LOADGEN_ASYNC and cls.runs_tasks and not any(method in c.methods for c in cls.ancestors())
        if s.family is not None:
            cls, method = s.family
            return method in _LOADGEN_ASYNC and cls.runs_tasks and not cls.defines(method)
        return False

    # -- the client handed to helpers --------------------------------------------------------------
    def client_parameters(self) -> None:
        """``def helper(client): client.get(...)`` called as ``helper(self.client)``: those calls are the client's."""
        candidates = self.facts.param_clients
        wanted = {(s.owner, s.param) for s in candidates}
        clients: set[tuple[FuncInfo | None, str | None]] = set()
        changed = bool(candidates)
        while changed:
            changed = False
            for s in self.facts.call_sites:
                assert isinstance(s.node, cst.Call)
                bound = 0 if isinstance(s.node.func, cst.Name) else 1  # a method called on self: its first is self
                for t in self.targets[s]:
                    for i, arg in enumerate(s.node.args):
                        if arg.star:
                            break
                        at = i + (bound if t.cls is not None else 0)
                        name = arg.keyword.value if arg.keyword is not None else \
                            t.params[at] if at < len(t.params) else None
                        if (t, name) not in wanted or (t, name) in clients:
                            continue
                        v = arg.value
                        if (isinstance(v, cst.Attribute) and v.attr.value == "client") or (
                            isinstance(v, cst.Name) and (s.owner, v.value) in clients
                        ):
                            clients.add((t, name))
                            self.client_args.add(v)
                            changed = True
        for c in candidates:
            if (c.owner, c.param) in clients and c.owner is not None:
                self.facts.client_sites.append(c)
                c.owner.client_sites.append(c)

    # -- classes ---------------------------------------------------------------------------------
    def classes(self) -> None:
        notes = self.plan.notes
        for c in self.facts.classes:
            line = self.line(c.node)
            if c.sets_client and c.kind in ("user", "tasks"):
                notes.warn(line, f"{c.name} sets its own self.client (a custom client): loadgen's User has an HTTP "
                           "client and records only the requests that client makes, so this user needs hand work",
                           c.node)
            if c.kind == "tasks" and c.foreign_bases:
                notes.warn(line, f"{c.name} derives from {', '.join(c.foreign_bases)}, defined in another file: "
                           "convert that file too (a user class must derive from loadgen's User)", c.node)
            if c.fast:
                for name, stmt, at in c.attrs:
                    if name in FASTHTTP_SETTINGS:
                        notes.warn(at, f"FastHttpUser's {name} has no per-class setting in loadgen: use "
                                   f"{FASTHTTP_SETTINGS[name]}", stmt)

    # -- async -----------------------------------------------------------------------------------
    def asyncs(self) -> None:
        functions = self.facts.functions
        group: dict[FuncInfo, FuncInfo] = {f: f for f in functions}

        def find(f: FuncInfo) -> FuncInfo:
            while group[f] is not f:
                group[f] = group[group[f]]
                f = group[f]
            return f

        for ts in self.targets.values():
            for t in ts[1:]:
                group[find(t)] = find(ts[0])
        members: dict[FuncInfo, list[FuncInfo]] = {}
        for f in functions:
            members.setdefault(find(f), []).append(f)

        # Where a sleep must not block: tasks, and test_start/test_stop listeners (loadgen awaits async ones).
        roots = self.forced | {f for f in functions if any(_async_listener(q) for _, q in f.decorators)}
        self.roots = roots
        reachable = set(roots)
        todo = list(roots)
        while todo:
            f = todo.pop()
            for s in f.call_sites:
                for t in self.targets[s]:
                    if t not in reachable:
                        reachable.add(t)
                        todo.append(t)
        self.reachable = reachable

        needs: set[FuncInfo] = set()
        changed = True
        while changed:
            changed = False
            for f in functions:
                if f in needs or not (f in self.forced or self.not_async_why(f) is None):
                    continue
                if (
                    f in self.forced or f.node.asynchronous is not None
                    or any(self.http(s, s.own) for s in f.client_sites if not s.multi_with)
                    or (f.sleep_sites and f in reachable)
                    or any(t in needs for s in f.call_sites for t in self.targets[s])
                    or any(self._loadgen_async(s) for s in f.call_sites)
                ):
                    needs.add(f)
                    changed = True
            for f in list(needs):
                for g in members[find(f)]:
                    if g not in needs and (g in self.forced or self.not_async_why(g) is None):
                        needs.add(g)
                        changed = True
        self.async_funcs = needs
        for f in functions:
            if f in needs:
                if f.node.asynchronous is None:
                    self.plan.async_defs.add(f.node)
                if f in self.forced and (why := self.not_async_why(f)) is not None and f.decorators:
                    self.plan.notes.warn(self.line(f.node), f"{why}, and is now async: check that the decorator "
                                         "works on an async function (it must await it)", f.node)
            elif any(g in needs for g in members[find(f)]):
                self.plan.notes.warn(self.line(f.node), f"{f.label} stays synchronous ({self.not_async_why(f)}) "
                                     "while the methods of that name it stands for became async", f.node)
        called = {t for ts in self.targets.values() for t in ts}
        for f in needs:
            if f.node.asynchronous is None and f not in self.roots and f not in called and f.cls is None \
                    and f.parent is None:
                self.plan.notes.warn(self.line(f.node), f"{f.label} is async now (it makes requests or sleeps); "
                                     "this file does not call it by name: await it where it is called", f.node)

    def context(self, site: Site) -> str:
        """Where ``site`` runs, when that is not an async function."""
        if site.owner is None:
            return site.where
        return f"in {site.owner.label} ({self.not_async_why(site.owner) or 'not async'})"

    # -- calls -----------------------------------------------------------------------------------
    def calls(self) -> None:
        plan = self.plan
        for s in self.facts.client_sites:
            if not self.http(s, s.own):
                continue
            assert isinstance(s.node, cst.Call)
            plan.client_calls[s.node] = self.call_fix(s)
            if s.multi_with:
                self.warn(s, f"{code_of(s.node)} is one item of a `with` of several: convert it by hand "
                          "(r = await self.client.get(...), then the other items)")
            elif s.owner in self.async_funcs:
                if s.with_node is not None:
                    asname = s.with_node.items[0].asname
                    plan.withs[s.with_node] = WithFix(asname.name if asname is not None else None)
                elif not s.awaited:
                    plan.awaited.add(s.node)
            else:
                self.warn(s, f"{code_of(s.node)} cannot be awaited {self.context(s)}: loadgen's client is async, "
                          "so make this request in on_start or a task")
        for s in self.facts.sleep_sites:
            assert isinstance(s.node, cst.Call)
            if s.owner in self.async_funcs:
                plan.sleeps.add(s.node)
                plan.needs_asyncio = True
                root = s.node.func
                while isinstance(root, cst.Attribute):
                    root = root.value
                self.consumed.add(root)
            elif (s.owner is not None and s.owner in self.reachable) or (s.cls is not None and s.cls.runs_tasks):
                self.warn(s, f"{code_of(s.node)} blocks loadgen's event loop {self.context(s)}: "
                          "await asyncio.sleep() in on_start or a task instead")
        for s in self.facts.call_sites:
            async_targets = [t for t in self.targets[s] if t in self.async_funcs]
            if not (async_targets or self._loadgen_async(s)) or s.awaited:
                continue
            assert isinstance(s.node, cst.Call)
            if s.owner in self.async_funcs:
                if s.with_node is not None:  # `with self.send(...) as r:` of a function returning a response
                    asname = s.with_node.items[0].asname
                    plan.withs[s.with_node] = WithFix(asname.name if asname is not None else None)
                else:
                    plan.awaited.add(s.node)
            else:
                what = async_targets[0].label if async_targets else code_of(s.node.func)
                self.warn(s, f"{code_of(s.node)} cannot be awaited {self.context(s)}, and {what} is async now "
                          "(it makes requests or sleeps): call it from on_start or a task")
        for w, site in self.facts.rename_withs:
            plan.withs[w] = WithFix(None, unwrap=True)
        for s in self.facts.request_names:
            assert isinstance(s.node, cst.BaseSmallStatement)
            plan.dropped.add(s.node)

    def call_fix(self, s: ClientSite) -> CallFix:
        """The arguments of one client call, as loadgen's client takes them, and Locust's name for its row."""
        assert isinstance(s.node, cst.Call)
        fix = CallFix()
        fast = self.fast(s)
        url_at = 1 if s.method == "request" else 0
        table = (FAST_POSITIONAL if fast else POSITIONAL).get(s.method, ())
        keywords: dict[str, cst.Arg] = {}
        url: cst.BaseExpression | None = None
        for i, arg in enumerate(s.node.args):
            if arg.star:
                continue
            if arg.keyword is not None:
                keywords[arg.keyword.value] = arg
                continue
            k = i - url_at - 1
            if k == -1:
                url = arg.value
            elif 0 <= k < len(table):
                fix.keywords[i] = table[k]
                keywords[table[k]] = arg
            elif k >= 0:
                self.warn(s, f"{code_of(s.node)}: an argument loadgen's {s.method}() does not take by position "
                          "is kept (name it)")
        for name in keywords:
            if name in DROPPED_KEYWORDS:
                fix.dropped.add(name)
                why = DROPPED_KEYWORDS[name]
                if why is not None:
                    self.warn(s, why)
            elif name not in KEPT_KEYWORDS:
                hint = CLIENT_HINTS.get(name)
                self.warn(s, f"{name}= kept: loadgen's client takes no {name}= (a TypeError until it is removed)"
                          + (f"; {hint}" if hint else ""))
        if "name" not in keywords:
            if s.override is not None:
                fix.name = s.override.deep_clone()
            elif url is not None:
                params = keywords["params"].value if "params" in keywords else None
                fix.name = self.locust_name(s, url, params, fast)
        return fix

    def locust_name(self, s: ClientSite, url: cst.BaseExpression, params: cst.BaseExpression | None, fast: bool
                    ) -> cst.BaseExpression | None:
        """``name=`` for the row Locust reports, when loadgen's default (the path, no query) differs from it.

        HttpUser: the request's path with its query, ``params=`` included;
        FastHttpUser: the URL argument as written.
        """
        if isinstance(url, cst.SimpleString):
            value = url.evaluated_value
            if not isinstance(value, str):
                return None
            default = value.partition("?")[0] if value.startswith("/") else urlsplit(value).path or "/"
            if fast:
                return None if value == default else url.deep_clone()
            parts = urlsplit(value)
            named = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            if params is not None:
                try:
                    literal = ast.literal_eval(code_of(params, 10_000))
                except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                    self.warn(s, f"{code_of(s.node)}: Locust names this request with its query string (params=); "
                              "loadgen names it by its path: add name= to keep Locust's row")
                    return None
                if isinstance(literal, dict):
                    literal = {k: v for k, v in literal.items() if v is not None}  # requests drops None values
                query = urlencode(literal, doseq=True) if literal else ""
                if query:
                    named += ("&" if "?" in named else "?") + query
            return None if named == default else cst.SimpleString(_quoted(named))
        if isinstance(url, cst.FormattedString):
            texts = [p.value for p in url.parts if isinstance(p, cst.FormattedStringText)]
            first = url.parts[0] if url.parts else None
            relative = isinstance(first, cst.FormattedStringText) and first.value.startswith("/")
            if any("?" in t for t in texts) and (relative or fast) and params is None:
                return url.deep_clone()
            return None
        if fast:
            return url.deep_clone()  # FastHttpUser names a row by the URL argument as given, whatever it is
        if any("?" in text for text in _string_parts(url)):
            # HttpUser names it by path and query, known only at run time (ELSEWHERE + "/x?y=2").
            self.warn(s, f"{code_of(s.node)}: Locust names this request by its path and query string, known only "
                      "at run time; loadgen names it by its path: add name= to keep Locust's row")
        return None

    # -- responses of `with` blocks ----------------------------------------------------------------
    def responses(self) -> None:
        plan = self.plan
        for use in self.facts.responses:
            if use.with_node is None or use.with_node not in plan.withs:
                continue
            call = use.node
            assert isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
            if use.method == "failure":
                plan.attribute_renames[call.func] = "fail"
                continue
            item = use.with_node.items[0].item
            codes = self._status_codes(use)
            if codes is None:
                self.warn(use, f"{use.target}.success() dropped: loadgen counts a status of 400 or above as an error "
                          "unless the request expects it: add expect=<status> to the call if it does")
            elif item in plan.client_calls:
                plan.client_calls[item].expect |= {c for c in codes if c >= 400}  # type: ignore[index]
            elif any(c >= 400 for c in codes):
                self.warn(use, f"{use.target}.success() dropped: loadgen counts a status of 400 or above as an "
                          f"error unless the request expects it: add expect= to the request {code_of(item)} makes")
            expr = self.parents.get(call)
            if isinstance(expr, cst.Expr):
                plan.dropped.add(expr)
            else:
                plan.replaced[call] = cst.Name("None")

    def _status_codes(self, use: ResponseUse) -> set[int] | None:
        """The statuses under which ``r.success()`` runs (``if r.status_code == 404``), or None if unknown."""
        child: cst.CSTNode = use.node
        parent = self.parents.get(child)
        while parent is not None and parent is not use.with_node:
            if isinstance(parent, cst.If):
                return _codes(parent.test, use.target) if child is parent.body else None
            child, parent = parent, self.parents.get(parent)
        return None

    # -- attributes, listeners, shapes -------------------------------------------------------------
    def attributes(self) -> None:
        plan = self.plan
        for call, kind in self.facts.master_checks:
            # Listeners run in the processes that run users: never in a master.
            parent = self.parents.get(call)
            if isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Not):
                plan.replaced[parent] = cst.Name("True")
            else:
                plan.replaced[call] = cst.Name("False")
            runner = call.args[0].value
            self.consumed.add(runner)
            while isinstance(kind, cst.Attribute):
                kind = kind.value
            self.consumed.add(kind)
        for s in self.facts.environment:
            node = s.node
            assert isinstance(node, cst.Attribute)
            attr = node.attr.value
            if node in self.consumed or attr in ("host", "options"):
                continue
            why = _ENVIRONMENT.get(attr, "loadgen's environment has host, options and runner (None) only")
            self.warn(s, f"{code_of(node)}: {why}")
        for s in self.facts.user_environment:
            node = s.node
            assert isinstance(node, cst.Attribute) and isinstance(node.value, cst.Attribute)
            if node.attr.value == "host":
                receiver = node.value.value.deep_clone()
                plan.replaced[node] = cst.Attribute(cst.Attribute(receiver, cst.Name("client")), cst.Name("base_url"))
                continue
            hint = _ENVIRONMENT.get(node.attr.value)
            self.warn(s, f"{code_of(node)}: loadgen's users have no environment (Locust's Environment)"
                      + (f"; {hint}" if hint else ""))
        for s, own in self.facts.client_attrs:
            if self.http(s, own):
                assert isinstance(s.node, cst.Attribute)
                attr = s.node.attr.value
                hint = CLIENT_HINTS.get(attr)
                self.warn(s, f"{code_of(s.node)}: loadgen's client has no '{attr}'" + (f": {hint}" if hint else ""))
        for node in self.facts.get_dicts:
            plan.attribute_renames[node] = "as_dict"
        for r in self.facts.response_attrs:
            self.response_attribute(r)
        for s, own in self.facts.bare_clients:
            if self.http(s, own) and s.node not in self.client_args:
                self.warn(s, f"{code_of(s.node)} is handed to other code: loadgen's client is async (its calls are "
                          "awaited), so code written for a requests session cannot use it")
        for s, method in self.facts.locust_only:
            cls = s.cls
            if cls is None:
                continue
            if method in SHAPE_ONLY_METHODS and cls.kind == "shape":
                self.warn(s, f"{code_of(s.node)}(): {SHAPE_ONLY_METHODS[method]}")
            elif method in LOCUST_ONLY_METHODS and cls.runs_tasks:
                self.warn(s, f"{code_of(s.node)}(): {LOCUST_ONLY_METHODS[method]}")
        for s, why in self.facts.event_sites:
            self.warn(s, why)
        for d, f, event, s in self.facts.listener_drops:
            plan.dropped_decorators.add(d)
            self.warn(s, f"@{code_of(d.decorator)} removed: {event_reason(event)}; {f.name} is kept but never called")
        for s in self.facts.tuples:
            if s.cls is not None and s.cls.kind == "shape":
                self.warn(s, "a 3-tuple in tick(): Locust's third item picks the user classes of a stage; loadgen's "
                          "LoadShape.tick() returns (users, spawn_rate) and runs every user class")

    def response_attribute(self, r: ResponseAttr) -> None:
        """``r.<attr>`` on a converted response: ``r.elapsed.total_seconds()`` becomes ``r.elapsed_ms / 1000``;
        what loadgen's Response lacks is listed."""
        plan = self.plan
        live = plan.withs.get(r.with_node) is not None if r.with_node is not None else r.source in plan.client_calls
        node = r.node
        assert isinstance(node, cst.Attribute)
        attr = node.attr.value
        if not live or attr in RESPONSE_ATTRIBUTES:
            return
        if attr == "elapsed":
            total = self.parents.get(node)
            call = self.parents.get(total) if total is not None else None
            if isinstance(total, cst.Attribute) and total.attr.value == "total_seconds" \
                    and isinstance(call, cst.Call) and call.func is total and not call.args:
                plan.replaced[call] = cst.BinaryOperation(
                    cst.Attribute(node.value.deep_clone(), cst.Name("elapsed_ms")), cst.Divide(), cst.Integer("1000"),
                    lpar=[cst.LeftParen()], rpar=[cst.RightParen()],
                )
                return
        hint = RESPONSE_HINTS.get(attr)
        self.warn(r, f"{code_of(node)}: loadgen's Response has no '{attr}'" + (f": {hint}" if hint else ""))

    # -- __init__ ----------------------------------------------------------------------------------
    def inits(self) -> None:
        for c in self.facts.classes:
            if not c.runs_tasks:
                continue
            for f in c.methods.get("__init__", []):
                self._init(c, f)

    def _init(self, c: ClassInfo, f: FuncInfo) -> None:
        p = f.node.params
        named = [x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)][1:]
        star, kwargs = p.star_arg, p.star_kwarg
        if not named and isinstance(star, cst.Param) and kwargs is not None:
            return  # (self, *args, **kwargs): passes whatever loadgen gives
        supers = [call for owner, call in self.facts.super_inits if owner is f]
        if len(supers) == 1 and named:
            call = supers[0]
            inside = _names_in(call)
            if all(all(r in inside for r in f.param_reads.get(n, [])) for n in named):
                self.plan.init_rewrites.add(f.node)
                self.plan.super_inits.add(call)
                return
        made = "each user as {0}(client, index)" if c.kind == "user" else "task sets itself"
        self.plan.notes.warn(
            self.line(f.node),
            f"{c.name}.__init__ takes Locust's arguments ({', '.join(named) or 'none'}): loadgen creates "
            f"{made.format(c.name)}; move this code to on_start", f.node,
        )


def _async_listener(qualified: str) -> bool:
    """``@events.test_start.add_listener`` or ``test_stop``'s: loadgen awaits such a listener if it is async."""
    return is_locust(qualified) and qualified.split(".")[-3:] in (
        ["events", "test_start", "add_listener"], ["events", "test_stop", "add_listener"])


def _string_parts(node: cst.CSTNode) -> list[str]:
    """The literal text inside an expression: its strings and the text of its f-strings."""
    found: list[str] = []

    class _Strings(cst.CSTVisitor):
        def visit_SimpleString(self, n: cst.SimpleString) -> None:
            value = n.evaluated_value
            if isinstance(value, str):
                found.append(value)

        def visit_FormattedStringText(self, n: cst.FormattedStringText) -> None:
            found.append(n.value)

    node.visit(_Strings())
    return found


def _names_in(node: cst.CSTNode) -> set[cst.CSTNode]:
    """Every Name node under ``node``."""
    found: set[cst.CSTNode] = set()

    class _V(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.add(n)

    node.visit(_V())
    return found


def _is_status(expr: cst.BaseExpression, name: str) -> bool:
    return (
        isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == name
        and expr.attr.value in ("status_code", "status")
    )


def _codes(test: cst.BaseExpression, name: str) -> set[int] | None:
    """The statuses ``test`` accepts (``r.status_code == 404``, ``... in (404, 410)``, ``r.ok``), or None."""
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.Or):
        left, right = _codes(test.left, name), _codes(test.right, name)
        return left | right if left is not None and right is not None else None
    if isinstance(test, cst.Attribute) and isinstance(test.value, cst.Name) and test.value.value == name \
            and test.attr.value == "ok":
        return set()  # below 400: nothing to expect
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return None
    comparison = test.comparisons[0]
    op = comparison.operator
    if _is_status(test.left, name):
        other = comparison.comparator
    elif _is_status(comparison.comparator, name) and isinstance(op, cst.Equal):
        other = test.left
    else:
        return None
    if isinstance(op, cst.Equal) and isinstance(other, cst.Integer):
        return {int(other.evaluated_value)}
    if isinstance(op, cst.In) and isinstance(other, (cst.Tuple, cst.List, cst.Set)):
        values = [e.value for e in other.elements]
        if values and all(isinstance(v, cst.Integer) for v in values):
            return {int(v.evaluated_value) for v in values if isinstance(v, cst.Integer)}
    if isinstance(op, (cst.LessThan, cst.LessThanEqual)) and isinstance(other, cst.Integer) \
            and int(other.evaluated_value) <= 400 and other is comparison.comparator:
        return set()
    return None


def _quoted(text: str) -> str:
    """A Python string literal for ``text``, in double quotes when it can be."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return repr(text)
