"""``loadgen run`` over TLS, HTTP/2 and proxies, against Debian's nginx and tinyproxy (issue 12).

Each run is a real process; what the servers logged is compared with what
loadgen recorded: nginx's access log gives the protocol of every request it
served, tinyproxy's log every request it forwarded or tunnelled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from servers_tls import Nginx, Pki, Tinyproxy, make_pki


def _loadgen(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "loadgen", "run", *args, "-q", "--db", "none"],
                          capture_output=True, text=True, timeout=timeout, env=full)


def _summary(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    out = tmp_path / f"summary-{time.monotonic_ns()}.json"
    p = _loadgen(*args, "--summary-json", str(out), env=env)
    assert out.exists(), p.stderr
    return json.loads(out.read_text()), p


def _settle(read, expected: int, timeout: float = 10.0) -> list[str]:
    """The log's lines once it holds ``expected`` of them (nginx writes as requests end)."""
    deadline = time.monotonic() + timeout
    lines = read()
    while len(lines) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = read()
    return lines


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls_server(pki: Pki, *, self_signed: bool = False, mutual: bool = False, http2: bool = True) -> str:
    cert, key = (pki.self_signed_cert, pki.self_signed_key) if self_signed else (pki.server_cert, pki.server_key)
    extra = f"ssl_verify_client on; ssl_client_certificate {pki.client_ca_cert};" if mutual else ""
    h2 = " http2" if http2 else ""
    return (f"server {{ listen 127.0.0.1:{{port}} ssl{h2}; ssl_certificate {cert}; ssl_certificate_key {key}; "
            f"{extra} location / {{ return 200 \"ok $ssl_server_name\"; }} }}")


def test_a_self_signed_target_is_refused_without_insecure_and_served_with_it(tmp_path, pki):
    with Nginx(tmp_path / "nginx", [_tls_server(pki, self_signed=True)]) as ng:
        url = ng.url(0, "https") + "/"
        refused, p = _summary(tmp_path, "--url", url, "--rate", "10", "--run-time", "1s")
        assert refused["requests"] == 10 and refused["errors_by_kind"] == {"tls": 10}, p.stderr
        accepted, p = _summary(tmp_path, "--url", url, "--rate", "10", "--run-time", "1s", "--insecure")
        assert accepted["requests"] == 10 and accepted["errors"] == 0, p.stderr
        trusted, p = _summary(tmp_path, "--url", url, "--rate", "10", "--run-time", "1s",
                              "--ca-bundle", str(pki.self_signed_cert))
        assert trusted["errors"] == 0, p.stderr
        assert len(_settle(ng.log, 20)) == 20  # the refused handshakes never reached HTTP


def test_mutual_tls_is_required_and_satisfied(tmp_path, pki):
    with Nginx(tmp_path / "nginx", [_tls_server(pki, mutual=True)]) as ng:
        url = ng.url(0, "https", host="localhost") + "/"
        common = ("--url", url, "--rate", "5", "--run-time", "1s", "--ca-bundle", str(pki.ca_cert))
        without, _ = _summary(tmp_path, *common)
        assert without["requests"] == 5 and without["status_codes"] == {"400": 5}  # nginx: no required certificate
        with_cert, p = _summary(tmp_path, *common, "--client-cert", str(pki.client_cert),
                                "--client-key", str(pki.client_key))
        assert with_cert["status_codes"] == {"200": 5}, p.stderr


def test_a_key_that_is_not_a_key_is_one_sentence_and_exit_2(tmp_path, pki):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    p = _loadgen("--url", "https://127.0.0.1:9/", "--rate", "1", "--run-time", "1s",
                 "--client-cert", str(pki.client_cert), "--client-key", str(bad))
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert len([line for line in p.stderr.strip().splitlines() if line.strip()]) <= 2, p.stderr
    missing = _loadgen("--url", "https://127.0.0.1:9/", "--rate", "1", "--run-time", "1s",
                       "--ca-bundle", str(tmp_path / "nowhere.pem"))
    assert missing.returncode == 2 and "nowhere.pem" in missing.stderr and "Traceback" not in missing.stderr


def test_resolve_keeps_the_name_for_sni_certificate_and_host(tmp_path, pki):
    with Nginx(tmp_path / "nginx", [_tls_server(pki)]) as ng:
        port = ng.ports[0]
        scenario = tmp_path / "s.py"
        scenario.write_text(textwrap.dedent(f"""
            from loadgen import User, task

            class U(User):
                host = "https://staging.example.test:{port}"

                @task
                async def t(self):
                    r = await self.client.get("/")
                    r.check(status=200, contains="ok staging.example.test", name="sni")
        """))
        s, p = _summary(tmp_path, str(scenario), "--users", "1", "--run-time", "1s",
                        "--ca-bundle", str(pki.ca_cert), "--resolve", f"staging.example.test:{port}:127.0.0.1")
        assert s["requests"] > 0 and s["errors"] == 0, (s["errors_by_kind"], p.stderr)
        assert s["checks"] and all(c["fails"] == 0 for c in s["checks"].values()), s["checks"]


@pytest.mark.parametrize("mode", ["h2", "h2c"])
def test_http2_serves_every_request_and_nginx_counts_each_as_http2(tmp_path, pki, mode):
    servers = [_tls_server(pki)] if mode == "h2" else [
        "server { listen 127.0.0.1:{port} http2; location / { return 200 \"ok\"; } }"]
    with Nginx(tmp_path / "nginx", servers) as ng:
        url = ng.url(0, "https" if mode == "h2" else "http") + "/x"
        s, p = _summary(tmp_path, "--url", url, "--rate", "40", "--run-time", "2s", "--users", "4",
                        "--http2", mode, "--ca-bundle", str(pki.ca_cert))
        assert s["requests"] == 80 and s["errors"] == 0, (s["errors_by_kind"], p.stderr)
        lines = _settle(ng.log, 80)
        assert len(lines) == 80
        assert all(line.startswith("HTTP/2.0 200 GET /x") for line in lines), lines[:3]


def test_http2_offered_to_a_server_without_it_falls_back_to_http1(tmp_path, pki):
    with Nginx(tmp_path / "nginx", [_tls_server(pki, http2=False)]) as ng:
        s, p = _summary(tmp_path, "--url", ng.url(0, "https") + "/", "--rate", "10", "--run-time", "1s",
                        "--http2", "h2", "--ca-bundle", str(pki.ca_cert))
        assert s["errors"] == 0, p.stderr
        assert [line.split()[0] for line in _settle(ng.log, 10)] == ["HTTP/1.1"] * 10


def test_http2_streams_of_one_user_share_one_connection(tmp_path, pki):
    with Nginx(tmp_path / "nginx", [_tls_server(pki)]) as ng:
        scenario = tmp_path / "s.py"
        scenario.write_text(textwrap.dedent("""
            import asyncio
            from loadgen import User, task

            class U(User):
                http2 = "h2"

                @task
                async def t(self):
                    rs = await asyncio.gather(*(self.client.get(f"/p{i}", name="/p") for i in range(20)))
                    assert all(r.status == 200 for r in rs)
                    raise SystemExit(0)
        """))
        s, p = _summary(tmp_path, str(scenario), "--users", "1", "--run-time", "5s", "--host", ng.url(0, "https"),
                        "--ca-bundle", str(pki.ca_cert))
        assert s["requests"] == 20 and s["errors"] == 0 and not s["exceptions"], (s["exceptions"], p.stderr)
        lines = _settle(ng.log, 20)
        assert all(line.startswith("HTTP/2.0 200") for line in lines) and len(lines) == 20


def test_proxies_from_the_environment_and_no_proxy(tmp_path, pki):
    with Nginx(tmp_path / "nginx", [_tls_server(pki), "server { listen 127.0.0.1:{port}; location / { return 200 \"plain\"; } }"]) as ng, \
            Tinyproxy(tmp_path / "proxy") as proxy:
        plain, tls = ng.url(1) + "/plain", ng.url(0, "https", host="localhost") + "/tunnelled"
        env = {"HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url}
        s, p = _summary(tmp_path, "--url", plain, "--rate", "5", "--run-time", "1s", env=env)
        assert s["status_codes"] == {"200": 5}, p.stderr
        s, p = _summary(tmp_path, "--url", tls, "--rate", "5", "--run-time", "1s", "--ca-bundle", str(pki.ca_cert),
                        env=env)
        assert s["status_codes"] == {"200": 5}, p.stderr
        log = proxy.log()
        assert log.count(f"GET http://127.0.0.1:{ng.ports[1]}/plain") == 5
        assert log.count(f"CONNECT localhost:{ng.ports[0]}") >= 1  # one tunnel per connection, kept alive
        s, p = _summary(tmp_path, "--url", ng.url(1) + "/direct", "--rate", "5", "--run-time", "1s",
                        env={**env, "NO_PROXY": "127.0.0.1"})
        assert s["status_codes"] == {"200": 5}, p.stderr
        assert "/direct" not in proxy.log()


def test_the_proxy_option_with_credentials_masked_everywhere(tmp_path):
    with Nginx(tmp_path / "nginx", ["server { listen 127.0.0.1:{port}; location / { return 200 \"plain\"; } }"]) as ng, \
            Tinyproxy(tmp_path / "proxy", auth=("scott", "t1ger-Secret")) as proxy:
        url = ng.url(0) + "/via"
        good = f"http://scott:t1ger-Secret@127.0.0.1:{proxy.port}"
        s, p = _summary(tmp_path, "--url", url, "--rate", "5", "--run-time", "1s", "--proxy", good)
        assert s["status_codes"] == {"200": 5}, p.stderr
        assert proxy.log().count(f"GET http://127.0.0.1:{ng.ports[0]}/via") == 5
        wrong = f"http://scott:wrong-Secret@127.0.0.1:{proxy.port}"
        s, p = _summary(tmp_path, "--url", url, "--rate", "5", "--run-time", "1s", "--proxy", wrong)
        assert s["errors"] == 5 and set(s["status_codes"]) <= {"401", "407"}, p.stderr  # tinyproxy: 401
        for text in (p.stdout, p.stderr, json.dumps(s)):
            assert "Secret" not in text


def test_verify_and_cert_per_call_as_requests_names_them(tmp_path, pki):
    with Nginx(tmp_path / "nginx", [_tls_server(pki, self_signed=True), _tls_server(pki, mutual=True)]) as ng:
        scenario = tmp_path / "s.py"
        scenario.write_text(textwrap.dedent(f"""
            from loadgen import User, task

            class U(User):
                @task
                async def t(self):
                    self_signed, mutual = "{ng.url(0, "https")}/", "{ng.url(1, "https", host="localhost")}/"
                    refused = await self.client.get(self_signed, name="verified")
                    unverified = await self.client.get(self_signed, name="unverified", verify=False)
                    pinned = await self.client.get(self_signed, name="pinned", verify="{pki.self_signed_cert}")
                    no_cert = await self.client.get(mutual, name="no cert", verify="{pki.ca_cert}")
                    with_cert = await self.client.get(mutual, name="cert", verify="{pki.ca_cert}",
                                                      cert=("{pki.client_cert}", "{pki.client_key}"))
                    assert (refused.error, unverified.status, pinned.status) == ("tls", 200, 200), refused.error
                    assert (no_cert.status, with_cert.status) == (400, 200)
                    raise SystemExit(0)
        """))
        s, p = _summary(tmp_path, str(scenario), "--users", "1", "--run-time", "5s", "--host", ng.url(0, "https"))
        assert not s["exceptions"], s["exceptions"]
        ends = {name.split(" ", 1)[1]: (e["requests"], e["errors_by_kind"]) for name, e in s["endpoints"].items()}
        assert ends["verified"] == (1, {"tls": 1}) and ends["unverified"] == (1, {}) and ends["pinned"] == (1, {})
        assert ends["cert"] == (1, {}) and ends["no cert"][0] == 1
