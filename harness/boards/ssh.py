"""SSH to a board with the OpenSSH client (`ssh`) in a subprocess, one connection shared by a run's steps.

Why the OpenSSH client rather than asyncssh or paramiko: a person who reaches a board with `ssh` already has
it set up there (~/.ssh/config host aliases, ProxyJump through a lab gateway, agents and hardware keys,
known_hosts, certificates); the client honours all of it, and a Python library honours a part (paramiko
reads no ProxyJump, asyncssh reads a subset of ssh_config). It adds no dependency to the host install, and
its connection multiplexing (ControlMaster) makes the run's four steps (probe, copy, run, clean up) one TCP
connection and one login. What a library would give better, structured errors, we get by reading the
client's few stable messages (`explain`). asyncssh's concurrency is not needed: boards run in threads.

Host keys are checked against known_hosts (StrictHostKeyChecking=yes): a board whose key is unknown is
refused, unless the user says to trust it on first use (--accept-host-key: accept-new, which still refuses a
key that changed). BatchMode: no password prompt (several boards run in parallel; use keys or an agent).
$HARNESS_SSH_CONFIG names an ssh_config file used instead of ~/.ssh/config (ssh -F).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness.boards.targets import SshAddress
from harness.errors import HarnessError

CONFIG_ENV = "HARNESS_SSH_CONFIG"
CONNECT_TIMEOUT_S = 15
ALIVE_INTERVAL_S = 5  # a connection silent for 3 of these is taken as dropped
PERSIST_S = 300  # an idle master ends after this, even if this process was killed


def explain(label: str, stderr: str) -> str:
    """The client's failure as one line that says what to do."""
    text = stderr.strip()
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or ("Host key for" in text and "has changed" in text):
        return (f"{label}: the board's host key has changed since it was recorded in known_hosts; if the board "
                "was reinstalled, remove the old key (ssh-keygen -R HOST) and check the new one")
    if "Host key verification failed" in text or ("No " in text and "host key is known" in text):
        return (f"{label}: the board's host key is not in known_hosts; check it and add it (ssh to it once), or "
                "pass --accept-host-key to trust it on first use")
    if "Permission denied" in text or "Too many authentication failures" in text:
        return (f"{label}: the board refused the login ({_last(text)}); set up key login (ssh-copy-id) or an "
                "agent: harness runs ssh in batch mode, with no password prompt")
    for sign in ("Connection refused", "Could not resolve", "timed out", "No route to host", "Network is unreachable",
                 "Connection closed", "Connection reset"):
        if sign in text:
            return f"{label}: cannot reach the board ({_last(text)}); check the address and that sshd runs there"
    return f"{label}: ssh failed: {_last(text) or 'no message'}"


def _last(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Warning:")]
    return lines[-1] if lines else ""


class SshConnection:
    """One login to a board, held by a master process for the run; `run`/`popen` use it for each step."""

    def __init__(self, address: SshAddress, accept_host_key: bool = False) -> None:
        self.address = address
        self.accept_host_key = accept_host_key
        self._dir: Path | None = None

    def options(self) -> list[str]:
        config = os.environ.get(CONFIG_ENV)
        opts = ["-F", config] if config else []
        checking = "accept-new" if self.accept_host_key else "yes"
        opts += ["-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={checking}",
                 "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", f"ServerAliveInterval={ALIVE_INTERVAL_S}",
                 "-o", "ServerAliveCountMax=3"]
        if self.address.port:
            opts += ["-p", str(self.address.port)]
        if self._dir is not None:
            opts += ["-o", f"ControlPath={self._dir / 'cm'}"]
        return opts

    def __enter__(self) -> SshConnection:
        if shutil.which("ssh") is None:
            raise HarnessError("--on needs the OpenSSH client (ssh) on this machine: install openssh-client")
        self._dir = Path(tempfile.mkdtemp(prefix="harness-ssh-"))  # short: a socket path has ~100 bytes
        errors = self._dir / "master.err"
        with open(errors, "wb") as err:  # a file, not a pipe: the master keeps it open in the background
            proc = subprocess.run(["ssh", *self.options(), "-o", "ControlMaster=yes", "-o",
                                   f"ControlPersist={PERSIST_S}", "-f", "-N", self.address.destination],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        if proc.returncode != 0:
            message = explain(self.address.label, errors.read_text(errors="replace"))
            self._cleanup()
            raise HarnessError(message)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            subprocess.run(["ssh", *self.options(), "-O", "exit", self.address.destination],
                           stdin=subprocess.DEVNULL, capture_output=True)
            self._cleanup()

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def argv(self, remote: Sequence[str]) -> list[str]:
        """The local command that runs REMOTE (an argv, quoted for the board's shell) over this connection."""
        return ["ssh", *self.options(), "-o", "ControlMaster=no", self.address.destination, "--",
                " ".join(shlex.quote(a) for a in remote)]

    def run(self, remote: Sequence[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.argv(remote), input=stdin, capture_output=True)

    def popen(self, remote: Sequence[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(remote), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
