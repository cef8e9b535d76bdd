"""A throw-away PostgreSQL server on a free TCP port, for what the test server cannot show
(the tests of connections, passwords and TLS).

The test server may be the embedded one, which listens on a Unix socket only, where libpq ignores
``sslmode``; and it trusts every password. These servers listen on 127.0.0.1, check passwords
(scram-sha-256) when asked, and speak TLS when given a certificate. They run the binaries of
pgserver (always installed; built without SSL) or of a PostgreSQL installed on the machine (with
SSL), as the ``pgserver`` system user when the tests run as root (initdb refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from racemap.db import Database

PGSERVER_BIN = Path(__import__("pgserver").__file__).parent / "pginstall" / "bin"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def ssl_bindir() -> Path | None:
    """The bin directory of an installed PostgreSQL built with OpenSSL, if any."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in (*candidates, Path("/usr/local/pgsql/bin")):
        config = path / "pg_config"
        if (path / "postgres").exists() and config.exists():
            configure = subprocess.run(
                [str(config), "--configure"], capture_output=True, text=True, check=False
            ).stdout
            if "--with-openssl" in configure or "--with-ssl=openssl" in configure:
                return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    root: Path
    port: int
    bindir: Path
    user: str | None

    @property
    def admin(self) -> Database:
        """Superuser over the server's own socket (trusted)."""
        return Database(str(self.root), self.port, "postgres", "postgres")

    def tcp(self, user: str, dbname: str, password: str | None = None, **options) -> Database:
        return Database("localhost", self.port, user, dbname, password, options=options)

    def execute(self, *statements: str) -> None:
        conn = self.admin.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.close()

    def stop(self) -> None:
        _run([self.bindir / "pg_ctl", "-D", self.root / "data", "-w", "-m", "fast", "stop"], self)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(args, server, **kwargs):
    return subprocess.run(
        [str(a) for a in args],
        user=server.user,
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        **kwargs,
    )


def start(bindir: Path = PGSERVER_BIN, hba: str = "", ssl_files: dict | None = None) -> Server:
    """initdb and start in a fresh directory; ``hba`` lines go before the trusted socket line.

    ``ssl_files``: ``{"cert": path, "key": path, "ca": path}`` turns SSL on (ca: client certs).
    """
    user = None
    if os.geteuid() == 0:
        from pgserver.utils import ensure_user_exists

        user = "pgserver"
        ensure_user_exists(user)
    root = Path(tempfile.mkdtemp(prefix="racemap-pg-"))
    root.chmod(0o755)
    server = Server(root, _free_port(), bindir, user)
    if user:
        shutil.chown(root, user)
    _run([bindir / "initdb", "-D", root / "data", "-U", "postgres", "-A", "trust"], server)
    settings = [f"port = {server.port}", "listen_addresses = '127.0.0.1'"]
    settings.append(f"unix_socket_directories = '{root}'")
    if ssl_files:
        for name, path in ssl_files.items():
            target = root / f"{name}.pem"
            shutil.copyfile(path, target)
            target.chmod(0o600)
            if user:
                shutil.chown(target, user)
        settings += [
            "ssl = on",
            f"ssl_cert_file = '{root / 'cert.pem'}'",
            f"ssl_key_file = '{root / 'key.pem'}'",
        ]
        if "ca" in ssl_files:
            settings.append(f"ssl_ca_file = '{root / 'ca.pem'}'")
    with open(root / "data" / "postgresql.conf", "a") as conf:
        conf.write("\n".join(settings) + "\n")
    (root / "data" / "pg_hba.conf").write_text(f"{hba}\nlocal all all trust\n")
    _run([bindir / "pg_ctl", "-D", root / "data", "-w", "-l", root / "log", "start"], server)
    deadline = time.monotonic() + 30
    while True:
        try:
            server.admin.connect().close()
            return server
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def make_certificates(directory: Path, client_user: str) -> dict[str, Path]:
    """A CA, a server certificate for localhost and a client certificate for ``client_user``."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=racemap test CA", "-keyout", "ca.key", "-out", "ca.pem",
    )  # fmt: skip
    for name, subject in (("server", "/CN=localhost"), ("client", f"/CN={client_user}")):
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
            "-keyout", f"{name}.key", "-out", f"{name}.csr",
        )  # fmt: skip
        (directory / f"{name}.ext").write_text(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n" if name == "server" else "\n"
        )
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
        )  # fmt: skip
        (directory / f"{name}.key").chmod(0o600)
    return {name: directory / name for name in os.listdir(directory)}
