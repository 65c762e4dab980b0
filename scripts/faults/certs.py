"""Throwaway certificates for TLS tests: a CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate, made with the openssl command line.

    python scripts/faults/certs.py DIR
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def _ssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path) -> dict[str, Path]:
    """ca.pem, server.pem/server.key (SAN 127.0.0.1, localhost), client.pem/client.key."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not on PATH")
    folder.mkdir(parents=True, exist_ok=True)
    _ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
         "ca.pem", "-days", "2", "-subj", "/CN=remotegrad test CA", cwd=folder)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth,clientAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (folder / f"{name}.ext").write_text(ext + "\n")
        _ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/CN=remotegrad {name}", cwd=folder)
        _ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
             f"{name}.ext", cwd=folder)
    return {n: folder / n for n in ("ca.pem", "server.pem", "server.key", "client.pem",
                                    "client.key")}


if __name__ == "__main__":
    for name, path in make_certs(Path(sys.argv[1])).items():
        print(name, path)
