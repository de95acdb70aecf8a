"""How loadgen's TLS connections verify servers and present a client certificate.

:class:`TlsOptions` holds what curl's ``-k``/``--cacert``/``--cert``/``--key``
(or k6's ``insecureSkipTLSVerify``) and requests' ``verify=``/``cert=`` say;
:meth:`TlsOptions.context` turns it into an :class:`ssl.SSLContext`, built once
per options and ALPN list: loading a CA store costs milliseconds, far too much
for each connection.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, replace
from functools import lru_cache

from ..errors import UsageError

__all__ = ["DEFAULT_ALPN", "TlsOptions"]

#: What a connection offers when the caller does not ask for HTTP/2.
DEFAULT_ALPN: tuple[str, ...] = ("http/1.1",)


@dataclass(frozen=True)
class TlsOptions:
    """Server verification and client certificate of TLS connections.

    ``insecure``: accept any server certificate (curl ``-k``).
    ``ca_bundle``: a PEM file, or a directory of hashed certificates (``openssl rehash``),
    of the CAs to trust instead of the system's.
    ``client_cert``: a PEM certificate for mutual TLS, which may hold the key too;
    ``client_key``: its key, when in a file of its own (not passphrase-protected).
    """

    insecure: bool = False
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    def validate(self) -> None:
        """Raise :class:`UsageError` (one sentence) for a file that is missing, unreadable or
        not PEM, an encrypted key, or a key that does not match the certificate."""
        self.context(DEFAULT_ALPN)

    def context(self, alpn: tuple[str, ...]) -> ssl.SSLContext:
        """The client context for these options offering ``alpn`` (cached per options and ALPN).

        Raises :class:`UsageError` as :meth:`validate` does.
        """
        return _context(self, tuple(alpn))

    def for_request(
        self, verify: bool | str | None = None, cert: str | tuple[str, str] | None = None
    ) -> TlsOptions:
        """These options changed as requests' ``verify=`` and ``cert=`` of one call say.

        ``verify``: False skips verification, True verifies (with this ``ca_bundle``), a path
        is the CA bundle to trust; ``cert``: a PEM file holding certificate and key, or a
        ``(certificate, key)`` pair. None leaves a setting as it is.
        """
        changed = self
        if verify is not None:
            if isinstance(verify, bool):
                changed = replace(changed, insecure=not verify)
            elif isinstance(verify, str) and verify:
                changed = replace(changed, insecure=False, ca_bundle=verify)
            else:
                raise UsageError(f"verify={verify!r} is not True, False or the path of a CA bundle")
        if cert is not None:
            if isinstance(cert, str) and cert:
                changed = replace(changed, client_cert=cert, client_key=None)
            elif (
                isinstance(cert, tuple) and len(cert) == 2
                and all(isinstance(part, str) and part for part in cert)
            ):
                changed = replace(changed, client_cert=cert[0], client_key=cert[1])
            else:
                raise UsageError(f"cert={cert!r} is not a certificate path or a (certificate, key) pair of paths")
        return changed


class _Encrypted(Exception):
    """The key needs a passphrase (raised by the password callback, so OpenSSL never prompts)."""


def _no_passphrase() -> str:
    raise _Encrypted


def _readable(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"the {what} {path!r} does not exist")
    if not os.access(path, os.R_OK):
        raise UsageError(f"the {what} {path!r} cannot be read")


def _holds_certificate(path: str) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError):
        return False
    return True


@lru_cache(maxsize=64)
def _context(options: TlsOptions, alpn: tuple[str, ...]) -> ssl.SSLContext:
    ca = options.ca_bundle
    if ca is None:
        ctx = ssl.create_default_context()
    elif os.path.isdir(ca):
        _readable(ca, "CA bundle")
        # A hashed directory's certificates are looked up during handshakes, so not checked now.
        ctx = ssl.create_default_context(capath=ca)
    else:
        _readable(ca, "CA bundle")
        try:
            ctx = ssl.create_default_context(cafile=ca)
        except (ssl.SSLError, OSError):
            raise UsageError(f"the CA bundle {ca!r} holds no PEM certificate") from None
    if options.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _load_client_certificate(ctx, options.client_cert, options.client_key)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _load_client_certificate(ctx: ssl.SSLContext, cert: str | None, key: str | None) -> None:
    if cert is None:
        if key is not None:
            raise UsageError(f"the client key {key!r} is given without a client certificate")
        return
    _readable(cert, "client certificate")
    if key is not None:
        _readable(key, "client key")
    try:
        ctx.load_cert_chain(cert, key, password=_no_passphrase)
    except _Encrypted:
        raise UsageError(
            f"the client key {key or cert!r} is protected by a passphrase, which loadgen cannot ask for: "
            "decrypt it with `openssl pkey -in KEY -out PLAIN_KEY`"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(_client_problem(cert, key, exc)) from None


def _client_problem(cert: str, key: str | None, exc: Exception) -> str:
    """Which of the two files is wrong, in one sentence (OpenSSL says only "PEM lib")."""
    if getattr(exc, "reason", None) == "KEY_VALUES_MISMATCH":
        return f"the client key {key or cert!r} does not match the client certificate {cert!r}"
    if not _holds_certificate(cert):
        return f"the client certificate {cert!r} is not a PEM certificate"
    if key is None:
        return f"the client certificate {cert!r} holds no PEM private key; give the key file too"
    return f"the client key {key!r} is not a PEM private key"
