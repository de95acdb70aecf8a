"""Real TLS servers for the HTTP tests: certificates made by ``openssl``, nginx and tinyproxy from Debian.

``make_pki(dir)`` writes a CA, a server certificate for ``localhost`` and
``127.0.0.1`` signed by it, a self-signed certificate, and a client
certificate signed by a second CA (for mutual TLS). ``Nginx`` runs nginx with
the server blocks a test gives, on free loopback ports, logging every request
as ``<protocol> <status> <method> <uri>`` so a test can count what nginx
really served. ``Tinyproxy`` runs tinyproxy on a free port with its log read
back. Each skips the test, with the reason, when its binary is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{proc.args[0]} exited: {err}{log.read_text() if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not listen on {port}: {log.read_text() if log.exists() else ''}")


@dataclass(frozen=True)
class Pki:
    """Paths of the files ``make_pki`` wrote."""

    ca_cert: Path  # the CA that signed server_cert
    server_cert: Path  # CN localhost, SAN DNS:localhost, IP:127.0.0.1
    server_key: Path
    self_signed_cert: Path  # the same names, signed by itself
    self_signed_key: Path
    client_ca_cert: Path  # the CA nginx trusts for client certificates
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (apt-get install openssl)")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> Pki:
    """A CA, a server certificate it signed, a self-signed one, and a client certificate from a second CA."""
    d.mkdir(parents=True, exist_ok=True)
    ext = d / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,DNS:staging.example.test,IP:127.0.0.1\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n")
    cext = d / "client.ext"
    cext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n")
    for ca in ("ca", "client-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=loadgen test {ca}",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    for name, ca, extfile in (("server", "ca", ext), ("client", "client-ca", cext)):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={'localhost' if name == 'server' else 'user'}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
                 "-days", "2", "-extfile", str(extfile), "-out", f"{name}.pem", cwd=d)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", "self.key", "-out", "self.pem", cwd=d)
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "self.pem", d / "self.key",
               d / "client-ca.pem", d / "client.pem", d / "client.key")


_NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format proto '$server_protocol $status $request_method $request_uri $server_port';
    access_log {prefix}/access.log proto;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type text/plain;
    keepalive_requests 100000;
{servers}
}}
"""


class Nginx:
    """nginx with the given ``server { ... }`` blocks; ``{port}`` in each is replaced by a free port.

    ``ports[i]`` is block i's port (Debian's nginx 1.22: ``listen ... ssl http2;``, and
    ``listen ... http2;`` for prior-knowledge h2c). ``log()`` returns the access log's lines,
    each ``<protocol> <status> <method> <uri> <port>`` (``HTTP/2.0 200 GET /x 443``).
    """

    def __init__(self, prefix: Path, servers: list[str]) -> None:
        if not shutil.which("nginx"):
            pytest.skip("nginx is not installed (apt-get install nginx)")
        self.prefix = prefix
        prefix.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port() for _ in servers]
        blocks = "\n".join(s.replace("{port}", str(p)) for s, p in zip(servers, self.ports))
        conf = prefix / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(prefix=prefix, servers=blocks))
        self.proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for p in self.ports:
                _wait_port(p, self.proc, prefix / "error.log")
        except BaseException:
            self.stop()
            raise

    def url(self, i: int = 0, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.ports[i]}"

    def log(self) -> list[str]:
        """The access log's lines (nginx writes each as the request ends, unbuffered)."""
        p = self.prefix / "access.log"
        return p.read_text().splitlines() if p.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Nginx":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Tinyproxy:
    """tinyproxy on a free loopback port; ``log()`` is its log (one CONNECT or request line each).

    ``auth=(user, password)`` makes it require proxy credentials (BasicAuth).
    """

    def __init__(self, prefix: Path, auth: tuple[str, str] | None = None) -> None:
        binary = shutil.which("tinyproxy") or ("/usr/bin/tinyproxy" if os.path.exists("/usr/bin/tinyproxy") else None)
        if not binary:
            pytest.skip("tinyproxy is not installed (apt-get install tinyproxy)")
        if os.geteuid() == 0:
            # As root tinyproxy runs as nobody, who cannot pass pytest's private tmp_path
            # parents: its log would stay silently empty. A world-reachable directory instead.
            prefix = Path(tempfile.mkdtemp(prefix="loadgen-tinyproxy-"))
            os.chmod(prefix, 0o777)
        prefix.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.port = free_port()
        self.logfile = prefix / "tinyproxy.log"
        lines = [
            f"Port {self.port}", "Listen 127.0.0.1", "Timeout 30", f"LogFile \"{self.logfile}\"", "LogLevel Info",
            "MaxClients 100", "Allow 127.0.0.1", "DisableViaHeader Yes",  # no ConnectPort: CONNECT to any port
        ]
        if os.geteuid() == 0:
            lines += ["User nobody", "Group nogroup"]
        if auth:
            lines.append(f"BasicAuth {auth[0]} {auth[1]}")
        conf = prefix / "tinyproxy.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            _wait_port(self.port, self.proc, self.logfile)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.prefix.name.startswith("loadgen-tinyproxy-"):
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> "Tinyproxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
