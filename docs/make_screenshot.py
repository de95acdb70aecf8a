"""Take docs/dashboard.png: the live dashboard in headless Chromium, mid-run.

A real run of ``scenarios/content.py`` against ``loadgen demo-target`` (both
started here on free ports on 127.0.0.1, the target answering 2 % of its API
calls with a 500 so the errors chart has something to show); once the charts
hold ``--after`` seconds of the run, the page is captured. When the port offers
the control API, the user count is raised part-way, so the change shows.

    .venv/bin/python docs/make_screenshot.py            # needs chromium and playwright
    .venv/bin/python docs/make_screenshot.py -o /tmp/x.png --after 20
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_BUDGET_BYTES = 200_000


def _started(args: list[str], pattern: str, timeout_s: float = 30.0) -> tuple[subprocess.Popen[str], str]:
    """Start ``loadgen ARGS``; the first match of ``pattern`` in its output (a URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "loadgen", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        found = re.search(pattern, line)
        if found:  # the rest of its output is read and dropped, so it never blocks on a full pipe
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, found.group(1)
    proc.kill()
    raise SystemExit(f"loadgen {args[0]} did not start: no line matching {pattern!r}")


def _post(url: str, doc: dict[str, object]) -> None:
    request = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except (urllib.error.URLError, OSError):
        pass  # no control API on this port (yet): the picture goes on without the change


def _controllable(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/control", timeout=5) as r:
            return bool(json.loads(r.read()).get("allowed"))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "dashboard.png")
    parser.add_argument("--after", type=float, default=40.0, help="seconds of the run shown")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    opts = parser.parse_args()
    from playwright.sync_api import sync_playwright

    demo = run = None
    with sync_playwright() as pw:
        # The browser starts first: its start-up would otherwise compete with the run's first seconds.
        browser = pw.chromium.launch(executable_path=opts.chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000}, device_scale_factor=1)
            demo, target = _started(["demo-target", "--port", "0", "--error-rate", "0.02"],
                                    r"listening on (http://\S+)")
            run, metrics = _started(["run", "scenarios/content.py", "--host", target, "--users", "12",
                                     "--run-time", f"{opts.after + 30:g}s", "--metrics-port", "0",
                                     "--metrics-grace", "0", "--db", "none"], r"metrics at (http://\S+)/metrics")
            page.goto(metrics + "/")
            changed = False
            deadline = time.monotonic() + opts.after + 60
            while time.monotonic() < deadline:
                shown = page.evaluate("window.__dashboard.points")
                if not changed and shown >= opts.after / 2 and _controllable(metrics):
                    _post(f"{metrics}/api/control/users", {"users": 20})
                    changed = True
                if shown >= opts.after:
                    break
                time.sleep(0.5)
            time.sleep(1.5)  # the next frame drawn, the control panel polled
            page.screenshot(path=str(opts.output), full_page=True)
        finally:
            browser.close()
            _end(run, demo)
    size = opts.output.stat().st_size
    print(f"{opts.output}: {size:,} bytes")
    return 0 if size <= _BUDGET_BYTES else 1


def _end(*procs: subprocess.Popen[str] | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
