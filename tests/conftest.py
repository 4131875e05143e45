"""Shared by the Python tests: start the built tollgate binary on the demo config,
on free loopback ports, with a ledger file of the test's own."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("tollgate did not start: " + proc.stderr.read())


def start_tollgate(ledger: Path, **env_overrides: str):
    """Run `tollgate serve --config config/demo.toml`; returns (process, apps URL, admin URL)."""
    binary = os.environ.get("TOLLGATE_BIN", str(ROOT / "target/debug/tollgate"))
    port, admin_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        TOLLGATE__SERVER__LISTEN=f"127.0.0.1:{port}",
        TOLLGATE__ADMIN__LISTEN=f"127.0.0.1:{admin_port}",
        TOLLGATE__LEDGER__PATH=str(ledger),
        **env_overrides,
    )
    proc = subprocess.Popen(
        [binary, "serve", "--config", str(ROOT / "config/demo.toml")],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(port, proc)
    wait_for(admin_port, proc)
    return proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
