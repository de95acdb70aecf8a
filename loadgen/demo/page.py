"""A small browser page on the demo target: what a person clicking through the API sends.

``GET /app`` serves an HTML page with a script, a style sheet and an image. Its
buttons log in, create a content item and poll it until it is done, and list
campaigns, each with ``fetch()`` and the bearer token the login returned: the
traffic a browser recording (a HAR file) of the platform holds, for
``loadgen har``. ``/app?analytics=ORIGIN`` also loads a script from ORIGIN
and sends it a beacon, as a page with a third-party analytics tag does.

The page only calls the demo's public API; it adds no state of its own.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["add_page_routes"]

_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Demo platform</title>
  <link rel="stylesheet" href="/app/app.css">
  <script src="/app/app.js" defer></script>
</head>
<body>
  <header><img src="/app/logo.svg" alt="" width="32" height="32"> Demo platform</header>
  <section>
    <input id="username" value="editor"> <input id="password" type="password" value="password">
    <button id="login">Log in</button> <span id="login-status"></span>
  </section>
  <section>
    <input id="prompt" value="Subject line for the spring sale newsletter">
    <button id="generate">Generate content</button> <span id="content-status"></span>
  </section>
  <section>
    <button id="campaigns">Campaigns</button> <span id="campaigns-status"></span>
    <ul id="campaign-list"></ul>
  </section>
</body>
</html>
"""

_SCRIPT = """"use strict";
const $ = (id) => document.getElementById(id);
let token = null;

async function api(method, path, body) {
  const headers = {};
  if (token) headers["Authorization"] = `Bearer ${token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  return [response.status, await response.json()];
}

async function logIn() {
  const [status, body] = await api("POST", "/api/auth/login",
    { username: $("username").value, password: $("password").value });
  if (status !== 200) return void ($("login-status").textContent = `login failed (${status})`);
  token = body.access_token;
  $("login-status").textContent = "logged in";
}

async function generate() {
  const [status, job] = await api("POST", "/api/content", { type: "simple", prompt: $("prompt").value });
  if (status !== 202) return void ($("content-status").textContent = `refused (${status})`);
  $("content-status").textContent = "queued";
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [code, state] = await api("GET", `/api/content/${job.job_id}`);
    if (code !== 200 || state.status === "done" || state.status === "failed") {
      $("content-status").textContent = code === 200 ? state.status : `poll failed (${code})`;
      return;
    }
  }
}

async function listCampaigns() {
  const [status, page] = await api("GET", "/api/campaigns?limit=10&offset=0");
  if (status !== 200) return void ($("campaigns-status").textContent = `failed (${status})`);
  $("campaign-list").replaceChildren(...page.items.map((c) => {
    const li = document.createElement("li");
    li.textContent = `${c.name}: ${c.status}`;
    return li;
  }));
  $("campaigns-status").textContent = `${page.items.length} of ${page.total}`;
}

function analytics(origin) {
  const tag = document.createElement("script");
  tag.src = `${origin}/widget.js`;
  document.head.appendChild(tag);
  fetch(`${origin}/collect?page=app`, { mode: "no-cors" });
}

$("login").addEventListener("click", logIn);
$("generate").addEventListener("click", generate);
$("campaigns").addEventListener("click", listCampaigns);
const tracker = new URLSearchParams(location.search).get("analytics");
if (tracker) analytics(tracker);
document.body.dataset.ready = "yes";
"""

_STYLE = """body { font-family: sans-serif; margin: 2em; }
header { font-size: 1.4em; margin-bottom: 1em; }
header img { vertical-align: middle; }
section { margin: 0.8em 0; }
"""

_LOGO = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="6" fill="#2b6cb0"/><path d="M8 22l6-12 4 8 3-5 3 9z" fill="#fff"/>
</svg>
"""

_FILES: dict[str, tuple[str, str]] = {
    "/app": (_HTML, "text/html"),
    "/app/app.js": (_SCRIPT, "text/javascript"),
    "/app/app.css": (_STYLE, "text/css"),
    "/app/logo.svg": (_LOGO, "image/svg+xml"),
}


def _serve(body: str, content_type: str) -> web.Response:
    return web.Response(text=body, content_type=content_type, charset="utf-8")


async def _file(request: web.Request) -> web.Response:
    body, content_type = _FILES[request.path]
    return _serve(body, content_type)


def add_page_routes(app: web.Application) -> None:
    """Serve the page and its three assets on ``app``."""
    app.router.add_routes([web.get(path, _file) for path in _FILES])
