"""The local certificate authority: one CA per state directory, a loopback server certificate."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LocalTLS:
    """Paths of the CA bundle (give it to clients) and of the server's cert chain and key."""

    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))


def ensure_local_tls(directory: Path) -> LocalTLS:
    """Create the CA and a loopback certificate in `directory` unless they already exist."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = LocalTLS(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if tls.ca_path.exists() and tls.cert_path.exists() and tls.key_path.exists():
        return tls
    ca = trustme.CA(organization_name="d365-phone local CA")
    cert = ca.issue_cert(*LOOPBACK_NAMES)
    ca.cert_pem.write_to_path(str(tls.ca_path))
    cert.private_key_pem.write_to_path(str(tls.key_path))
    with tls.cert_path.open("wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return tls
