"""A real ``python -m metaqore serve`` process for the server tests: started on a free
loopback port (``--port 0``, the address read from its start-up line) with a SQLite file
store and audit file, driven over HTTP with httpx, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

API_KEY = "test-key-" + secrets.token_hex(16)
LISTENING = re.compile(r"listening on (http://\S+?:\d+)")
START_TIMEOUT = 30.0


class ServerProcess:
    """One ``metaqore serve`` process, its files, and clients for it."""

    def __init__(
        self,
        workdir: Path,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        api_key: str | None = API_KEY,
        store: bool = True,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "store.db"
        self.audit_log = workdir / "audit.jsonl"
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        self.api_key = api_key
        command = [sys.executable, "-m", "metaqore", "serve", "--host", "127.0.0.1", "--port", "0"]
        if store:
            command += ["--db", f"sqlite:///{self.db}", "--audit-log", str(self.audit_log)]
        command += list(args)
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("METAQORE_")
        }
        if api_key is not None:
            environment["METAQORE_API_KEY"] = api_key
        environment.update(env or {})
        self.command = command
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=environment, stdout=out, stderr=err
            )
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------

    def logs(self) -> str:
        return (
            f"command: {self.command}\n--- stderr ---\n{self.stderr()}\n"
            f"--- stdout ---\n{self.stdout()}"
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", "replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text("utf-8", "replace")

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}\n{self.logs()}")
            if not self.base_url:
                match = LISTENING.search(self.stderr())
                if match:
                    self.base_url = match.group(1)
            if self.base_url:
                try:
                    if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        raise AssertionError(f"server did not become ready\n{self.logs()}")

    def wait_exit(self, timeout: float = 20.0) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"server ignored SIGTERM\n{self.logs()}") from None
        return self.process.returncode

    # -- clients ---------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)
