// The live dashboard: follows the run's frames (api/events), draws its own charts on
// canvas and offers the control API's actions (api/control) when the port allows them.
// Everything the run says (names, hosts, warnings) goes into the page as text, never markup;
// every request goes to this port (relative URLs), nothing else is loaded.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const NUM = new Intl.NumberFormat("en-US");
  const MAX_POINTS = 3600;
  const CONTROL_POLL_MS = 3000;
  const state = {
    points: [], frame: null, control: null, token: null, needToken: false, ended: false, markers: [], armed: null,
  };

  // What a test (or a curious person) can read: updated after every frame and every drawing.
  const view = { interval: 0, status: "starting", points: 0, drawn: {}, requests: 0, errors: 0, finished: false };
  window.__dashboard = view;

  // -- formatting --------------------------------------------------------------------

  function int(n) { return NUM.format(n); }
  function dec(v) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    if (Number.isInteger(v)) return NUM.format(v);
    const a = Math.abs(v);
    return a >= 100 ? NUM.format(Math.round(v)) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }
  function bytes(n) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }
  function clock(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + " h " : "") + mm + " m " + String(r).padStart(2, "0") + " s";
  }
  function axisTime(t) {
    t = Math.round(t);
    return t < 60 ? t + "s" : Math.floor(t / 60) + "m" + String(t % 60).padStart(2, "0");
  }
  function axisValue(v) {
    if (v >= 1e6) return +(v / 1e6).toFixed(2) + "M";
    if (v >= 1e3) return +(v / 1e3).toFixed(2) + "k";
    return String(+v.toFixed(2));
  }
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    const f = v / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * e;
  }
  function text(id, value) { const el = $(id); if (el.textContent !== value) el.textContent = value; }
  function cell(row, value, cls) {
    const td = document.createElement("td");
    td.textContent = value;
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  // -- charts ------------------------------------------------------------------------

  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
  const KIND_COLORS = {
    http_5xx: "#c62828", http_4xx: "#ef6c00", timeout: "#6a1b9a", connect: "#283593", reset: "#00838f",
    check: "#9e9d24", cutoff: "#6d4c41", protocol: "#ad1457", tls: "#4e342e", too_large: "#546e7a",
  };
  const PALETTE = ["#1565c0", "#2e7d32", "#f9a825", "#8e24aa", "#00897b", "#d81b60", "#5d4037", "#3949ab"];

  // The newest figure of a series: the last second may have none (the run's last sliver).
  function latest(points, value) {
    for (let j = points.length - 1; j >= Math.max(0, points.length - 3); j--) {
      const v = value(points[j]);
      if (v !== null && v !== undefined && isFinite(v)) return v;
    }
    return null;
  }

  function kindColor(kind, i) { return KIND_COLORS[kind] || PALETTE[i % PALETTE.length]; }

  class Chart {
    // series: [{label, color, value(point) -> number|null, dash}] or a function of the points giving one
    constructor(name, series, options) {
      this.name = name;
      this.canvas = $("chart-" + name);
      this.legend = $("l-" + name);
      this.series = series;
      this.stacked = !!(options && options.stacked);
      this.markers = !!(options && options.markers);
    }

    draw(points) {
      const series = typeof this.series === "function" ? this.series(points) : this.series;
      const c = this.canvas;
      const w = c.clientWidth, h = c.clientHeight;
      if (!w || !h) return;
      const dpr = window.devicePixelRatio || 1;
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
      const ctx = c.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, w, h);
      const pad = { l: 50, r: 10, t: 8, b: 20 };
      const pw = Math.max(1, w - pad.l - pad.r), ph = Math.max(1, h - pad.t - pad.b);

      const rows = series.map((s) => points.map((p) => {
        const v = s.value(p);
        return v === null || v === undefined || !isFinite(v) ? null : v;
      }));
      if (this.stacked) {  // each row becomes the running sum up to it
        for (let i = 1; i < rows.length; i++) {
          rows[i] = rows[i].map((v, j) => (v || 0) + (rows[i - 1][j] || 0));
        }
      }
      let max = 0;
      for (const row of rows) for (const v of row) if (v !== null && v > max) max = v;
      const step = niceCeil((max * 1.05) / 4), lines = Math.max(1, Math.ceil((max * 1.05) / step));
      const top = step * lines;
      const t0 = points.length ? points[0].t : 0;
      const t1 = points.length ? points[points.length - 1].t : 1;
      const span = Math.max(t1 - t0, 1);
      const x = (t) => pad.l + ((t - t0) / span) * pw;
      const y = (v) => pad.t + ph - (v / top) * ph;

      ctx.font = "11px system-ui, sans-serif";
      ctx.lineWidth = 1;
      ctx.strokeStyle = "#e6e9ef";
      ctx.fillStyle = "#5c6677";
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let i = 0; i <= lines; i++) {
        const v = step * i, yy = Math.round(y(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(w - pad.r, yy); ctx.stroke();
        ctx.fillText(axisValue(v), pad.l - 6, yy);
      }
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      if (points.length) {  // whole seconds, at a round step
        const tick = TIME_STEPS.find((step) => step >= span / 6) || TIME_STEPS[TIME_STEPS.length - 1];
        for (let t = Math.ceil(t0 / tick) * tick; t <= t1 + 1e-9; t += tick) {
          ctx.fillText(axisTime(t), Math.min(Math.max(x(t), pad.l + 12), w - pad.r - 14), h - pad.b + 5);
        }
      }
      if (this.markers) {  // control changes: when the rate or the users were changed
        ctx.save();
        ctx.strokeStyle = "#9a6700";
        ctx.setLineDash([3, 3]);
        for (const at of state.markers) {
          if (at < t0 || at > t1) continue;
          const xx = Math.round(x(at)) + 0.5;
          ctx.beginPath(); ctx.moveTo(xx, pad.t); ctx.lineTo(xx, pad.t + ph); ctx.stroke();
        }
        ctx.restore();
      }

      const order = this.stacked ? rows.map((_, i) => rows.length - 1 - i) : rows.map((_, i) => i);
      for (const i of order) {
        const s = series[i], row = rows[i];
        ctx.strokeStyle = s.color;
        ctx.fillStyle = s.color;
        ctx.lineWidth = 1.6;
        ctx.setLineDash(s.dash || []);
        if (this.stacked) {  // an area down to the axis; the lower kinds are drawn over it
          ctx.beginPath();
          ctx.moveTo(x(points[0] ? points[0].t : 0), y(0));
          row.forEach((v, j) => ctx.lineTo(x(points[j].t), y(v || 0)));
          if (points.length) ctx.lineTo(x(points[points.length - 1].t), y(0));
          ctx.closePath();
          ctx.globalAlpha = 0.35; ctx.fill(); ctx.globalAlpha = 1;
        }
        ctx.beginPath();
        let pen = false, alone = null;
        row.forEach((v, j) => {
          if (v === null) { pen = false; return; }
          const xx = x(points[j].t), yy = y(v);
          if (pen) { ctx.lineTo(xx, yy); alone = null; } else { ctx.moveTo(xx, yy); alone = [xx, yy]; }
          pen = true;
        });
        ctx.stroke();
        if (alone && points.length === 1) { ctx.fillRect(alone[0] - 2, alone[1] - 2, 4, 4); }
      }
      ctx.setLineDash([]);

      const keys = series.map((s, i) => {
        const key = document.createElement("span");
        key.className = "key";
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = s.color;  // CSSOM, not markup: allowed by the page's policy
        key.append(sw, document.createTextNode(s.label + " " + dec(latest(points, s.value))));
        return key;
      });
      this.legend.replaceChildren(...keys);
      c.dataset.points = String(points.length);
      view.drawn[this.name] = points.length;
    }
  }

  const errorSeries = (points) => {
    const kinds = [];
    for (const p of points) for (const k of Object.keys(p.errors || {})) if (!kinds.includes(k)) kinds.push(k);
    kinds.sort();
    return kinds.map((k, i) => ({ label: k, color: kindColor(k, i), value: (p) => (p.errors && p.errors[k]) || 0 }));
  };
  const charts = [
    new Chart("throughput", (points) => {
      const out = [
        { label: "requests/s", color: "#1565c0", value: (p) => p.rps },
        { label: "iterations/s", color: "#2e7d32", value: (p) => p.ips },
      ];
      if (points.some((p) => p.target !== null)) {
        out.push({ label: "target/s", color: "#757575", dash: [5, 4], value: (p) => p.target });
      }
      return out;
    }, { markers: true }),
    new Chart("latency", [
      { label: "p50", color: "#2e7d32", value: (p) => p.p50 },
      { label: "p95", color: "#ef6c00", value: (p) => p.p95 },
      { label: "p99", color: "#c62828", value: (p) => p.p99 },
    ]),
    new Chart("errors", errorSeries, { stacked: true }),
    new Chart("users", [
      { label: "users", color: "#1565c0", value: (p) => p.users },
      { label: "in flight", color: "#8e24aa", value: (p) => p.inflight },
    ]),
    new Chart("cpu", [{ label: "CPU %", color: "#00897b", value: (p) => p.cpu }]),
    new Chart("lag", (points) => {
      const out = [{ label: "loop stall", color: "#c62828", value: (p) => p.stall_ms }];
      if (points.some((p) => p.lag_ms !== null)) out.push({ label: "scheduler lag p99", color: "#ef6c00", value: (p) => p.lag_ms });
      return out;
    }),
  ];

  let drawPending = false;
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      for (const chart of charts) chart.draw(state.points);
    });
  }
  window.addEventListener("resize", scheduleDraw);

  function addPoints(list) {
    const pts = state.points;
    for (const p of list) {
      if (!p || (pts.length && p.t <= pts[pts.length - 1].t)) continue;  // a point is sent more than once
      pts.push(p);
    }
    if (pts.length > MAX_POINTS) pts.splice(0, pts.length - MAX_POINTS);
    view.points = pts.length;
    document.body.dataset.points = String(pts.length);
  }

  // -- the frame ---------------------------------------------------------------------

  const STATUS_TEXT = { starting: "waiting for the first second", running: "running", stopping: "stopping", finished: "finished" };

  function showStatus(status, reason) {
    const el = $("status");
    let label = STATUS_TEXT[status] || status;
    if (status === "finished") label += reason ? ": " + reason : ": the schedule ran to its end";
    else if (status === "stopping" && reason) label += ": " + reason;
    el.textContent = label;
    el.className = "status status-" + status;
    document.body.dataset.status = status;
    view.status = status;
  }

  function render(f) {
    const run = f.run;
    text("h-scenario", run.scenario);
    text("h-run", run.run_id);
    text("h-host", run.host || "–");
    text("h-model", run.model);
    text("h-version", run.app_version || "–");
    text("h-type", run.test_type);
    text("h-elapsed", clock(f.elapsed_s) + " of " + clock(run.planned_s));
    $("h-progress").value = run.planned_s > 0 ? Math.min(1, f.elapsed_s / run.planned_s) : 0;
    showStatus(f.status, f.stop_reason);

    text("v-requests", int(f.requests));
    text("v-rps", dec(f.rps) + " /s");
    text("v-errors", int(f.errors));
    text("v-error-rate", (f.requests ? ((100 * f.errors) / f.requests).toFixed(2) : "0") + " %");
    const p95 = latest(state.points, (q) => q.p95), p99 = latest(state.points, (q) => q.p99);
    text("v-p95", p95 === null ? "–" : dec(p95) + " ms");
    text("v-p99", "p99 " + (p99 === null ? "–" : dec(p99) + " ms"));
    text("v-iterations", int(f.iterations));
    text("v-rate", f.target_rate !== null
      ? dec(f.achieved_rate) + " /s of " + dec(f.target_rate) + " /s target"
      : dec(f.ips) + " /s");
    text("v-users", int(f.users));
    text("v-inflight", int(f.inflight));
    text("v-dropped", "dropped " + int(f.dropped) + (f.failed_iterations ? ", failed " + int(f.failed_iterations) : ""));
    text("v-cpu", f.cpu === null ? "– %" : dec(f.cpu) + " %");
    text("v-stall", "loop stall " + dec(f.stall_ms) + " ms" + (f.lag_ms !== null ? ", lag p99 " + dec(f.lag_ms) + " ms" : ""));

    const alerts = [];
    if (f.saturated) alerts.push(["bad", "The generator is saturated: this second's numbers are suspect."]);
    if (f.stalled) alerts.push(["bad", "The event loop stalled" + (f.stall_cause ? " (" + f.stall_cause + ")" : "") + ": this second's numbers are suspect."]);
    for (const w of f.warnings) alerts.push(["", "warning: " + w]);
    if (f.warning_count > f.warnings.length) alerts.push(["", (f.warning_count - f.warnings.length) + " more warnings (in the summary)"]);
    const box = $("alerts");
    box.replaceChildren(...alerts.map(([cls, msg]) => { const el = document.createElement("p"); el.className = cls; el.textContent = msg; return el; }));
    box.hidden = alerts.length === 0;

    const rows = f.endpoints.map((e) => {
      const tr = document.createElement("tr");
      cell(tr, e.method);
      cell(tr, e.name);
      cell(tr, int(e.requests));
      cell(tr, int(e.errors), e.errors ? "bad" : "");
      cell(tr, e.requests ? ((100 * e.errors) / e.requests).toFixed(2) : "0.00");
      cell(tr, dec(e.rps));
      cell(tr, dec(e.p50));
      cell(tr, dec(e.p95));
      cell(tr, dec(e.p99));
      cell(tr, dec(e.max));
      cell(tr, bytes(e.received));
      return tr;
    });
    $("endpoints").replaceChildren(...rows);
    const pairs = (obj, id) => $(id).replaceChildren(...Object.entries(obj).map(([k, v]) => {
      const tr = document.createElement("tr"); cell(tr, k); cell(tr, int(v)); return tr;
    }));
    pairs(Object.keys(f.errors_by_kind).length ? f.errors_by_kind : { none: 0 }, "kinds");
    pairs(Object.keys(f.status_classes).length ? f.status_classes : { none: 0 }, "classes");

    view.interval = f.interval;
    view.requests = f.requests;
    view.errors = f.errors;
    view.finished = f.status === "finished";
    document.body.dataset.interval = String(f.interval);
  }

  // -- the stream --------------------------------------------------------------------

  function connect() {
    const source = new EventSource("api/events");
    source.addEventListener("history", (e) => { state.points = []; addPoints(JSON.parse(e.data)); scheduleDraw(); });
    source.addEventListener("points", (e) => { addPoints(JSON.parse(e.data)); scheduleDraw(); });
    source.addEventListener("frame", (e) => {
      const f = JSON.parse(e.data);
      if (f.point) addPoints([f.point]);
      state.frame = f;
      render(f);
      scheduleDraw();
      if (f.status === "finished" && state.control) renderControl(state.control);
    });
    source.addEventListener("end", (e) => {
      source.close();  // the run is over (or the port is closing): no reconnecting
      state.ended = true;
      if (JSON.parse(e.data) !== "finished") {
        showStatus("disconnected", null);
        $("status").textContent = "the port closed";
      }
    });
    source.onerror = () => {
      if (!state.ended && !(state.frame && state.frame.status === "finished")) {
        $("status").textContent = "reconnecting…";
        $("status").className = "status status-disconnected";
      }
    };
  }

  // -- control (when the port offers it) ---------------------------------------------

  function authHeaders() { return state.token ? { Authorization: "Bearer " + state.token } : {}; }

  function message(msg, bad) {
    const el = $("c-message");
    el.textContent = msg;
    el.className = "message" + (bad ? " bad" : "");
  }

  // Whether the port has a control API (false: stop asking).
  async function loadControl() {
    let r;
    try {
      r = await fetch("api/control", { headers: authHeaders(), cache: "no-store" });
    } catch (err) {
      return true;
    }
    if (r.status === 404) {  // no control API on this port
      $("controls").hidden = true;
      state.control = null;
      return false;
    }
    let doc = null;
    try { doc = await r.json(); } catch (err) { doc = null; }
    if (!r.ok || !doc || typeof doc !== "object") return true;
    state.control = doc;
    renderControl(doc);
    return true;
  }

  function renderControl(c) {
    $("controls").hidden = false;
    const finished = !!(state.frame && state.frame.status === "finished") || state.ended;
    const can = new Set(Array.isArray(c.can) ? c.can : []);
    const allowed = !!c.allowed && c.running !== false && !finished;
    const why = $("c-why");
    const reason = finished ? "The run is over." : c.why || (c.allowed ? "" : "Control is not allowed on this port.");
    why.hidden = !reason;
    why.textContent = reason;
    // A token is asked for once, when the port needs one; a refused token (401) asks again.
    const askToken = (c.token_required && !state.token) || state.needToken;
    $("c-token-form").hidden = finished || !c.allowed || !askToken;
    $("c-stop").hidden = !can.has("stop");
    $("c-stop").disabled = !allowed;
    $("c-rate-label").hidden = !can.has("rate");
    $("c-users-label").hidden = !can.has("users");
    $("c-apply").hidden = !(can.has("rate") || can.has("users"));
    for (const el of [$("c-rate"), $("c-users"), $("c-apply")]) el.disabled = !allowed;
    if (document.activeElement !== $("c-rate") && typeof c.rate === "number") $("c-rate").value = String(c.rate);
    if (document.activeElement !== $("c-users") && typeof c.users === "number") $("c-users").value = String(c.users);
    const changes = Array.isArray(c.changes) ? c.changes : [];
    state.markers = changes.map((ch) => ch.at_s).filter((t) => typeof t === "number");
    $("c-changes").replaceChildren(...changes.map((ch) => {
      const li = document.createElement("li");
      const what = typeof ch.rate === "number" ? "rate " + dec(ch.rate) + " /s"
        : typeof ch.users === "number" ? "users " + int(ch.users) : String(ch.action || "change");
      li.textContent = "at " + clock(ch.at_s) + ": " + what;
      return li;
    }));
    scheduleDraw();
  }

  async function post(path, body) {
    let r;
    try {
      r = await fetch(path, {
        method: "POST", cache: "no-store", body: JSON.stringify(body),
        headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
      });
    } catch (err) {
      message("the request failed: " + err, true);
      return;
    }
    let doc = null;
    try { doc = await r.json(); } catch (err) { doc = null; }
    const msg = doc && typeof doc.message === "string" ? doc.message : r.status + " " + r.statusText;
    message(msg, !(r.ok && doc && doc.ok));
    state.needToken = r.status === 401;
    await loadControl();
  }

  $("c-stop").addEventListener("click", () => {
    const button = $("c-stop");
    if (state.armed === null) {  // a second click within a few seconds stops the run
      button.textContent = "Click again to stop";
      state.armed = setTimeout(() => { state.armed = null; button.textContent = "Stop the run"; }, 4000);
      return;
    }
    clearTimeout(state.armed);
    state.armed = null;
    button.textContent = "Stop the run";
    post("api/control/stop", {});
  });
  $("c-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const c = state.control;
    if (!c || !Array.isArray(c.can)) return;
    if (c.can.includes("rate")) {
      const rate = Number($("c-rate").value);
      if (!$("c-rate").value || !isFinite(rate) || rate < 0) { message("give a rate: a number of iterations a second", true); return; }
      post("api/control/rate", { rate: rate });
    } else if (c.can.includes("users")) {
      const users = Number($("c-users").value);
      if (!$("c-users").value || !Number.isInteger(users) || users < 0) { message("give a whole number of users", true); return; }
      post("api/control/users", { users: users });
    }
  });
  $("c-token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("c-token").value || null;  // in this page's memory only
    state.needToken = false;
    message(state.token ? "token kept for this page's control calls" : "", false);
    loadControl();
  });

  function pollControl() {
    if (state.ended || (state.frame && state.frame.status === "finished")) {
      if (state.control) renderControl(state.control);
      return;
    }
    loadControl().then((offered) => { if (offered) setTimeout(pollControl, CONTROL_POLL_MS); });
  }

  connect();
  pollControl();
})();
