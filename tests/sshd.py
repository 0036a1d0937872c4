"""Real OpenSSH servers for the `--on` tests, on 127.0.0.1, and a board-only Python for them to run.

`start_sshd(folder)` runs Debian's /usr/sbin/sshd on a free port with its own host key and config (no PAM,
no passwords, one authorized key the test generates, the current user); `board_prefix` runs it inside an
emulated board's root instead (the files then live in that root). `Sshd.env()` is what a client needs:
$HARNESS_SSH_CONFIG naming an ssh_config with the test's key and its own known_hosts (empty until `trust()`),
so the user's ~/.ssh is never read or written. The server sets XDG_CACHE_HOME for its sessions, so the board's
store and run folders live in the test's folder (`Sshd.cache`).

`board_venv()` is a venv with numpy, Pillow and ai-edge-litert only (no harness): the board side's Python.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
BOARD_PACKAGES = ("numpy", "Pillow", "ai-edge-litert")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "harness-test", "-f", str(path)], check=True)


@dataclass
class Sshd:
    port: int
    folder: Path  # on this machine
    cache: Path  # the sessions' XDG_CACHE_HOME, as seen from this machine
    proc: subprocess.Popen
    user: str

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    def env(self) -> dict[str, str]:
        return {**os.environ, "HARNESS_SSH_CONFIG": str(self.folder / "ssh_config")}

    def spec(self, python: str | None = None, user: str | None = None) -> str:
        query = f"?python={python}" if python else ""
        return f"ssh://{user or self.user}@127.0.0.1:{self.port}{query}"

    def host_key_line(self) -> str:
        kind, key = (self.folder / "host_ed25519.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}"

    def trust(self) -> None:
        self.known_hosts.write_text(self.host_key_line() + "\n")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_sshd(folder: Path, *, root: Path | None = None, board_prefix: Sequence[str] = (), user: str | None = None,
               timeout: float = 60.0, session_env: Mapping[str, str] | None = None) -> Sshd:
    """sshd on 127.0.0.1:<free port>. With ROOT (an emulated board's root), FOLDER must lie inside it and
    BOARD_PREFIX is the command that runs a program in that root (emulated_board.board_argv's).

    SESSION_ENV is set in every session: sshd starts sessions with a clean environment, so an emulated board's
    QEMU_CPU must be given here too, or its programs run on qemu's default CPU (emulated_board.SESSION_ENV)."""
    folder.mkdir(parents=True, exist_ok=True)
    inside = "/" + str(folder.relative_to(root)) if root else str(folder)  # FOLDER as the server sees it
    keygen(folder / "host_ed25519")
    keygen(folder / "client_key")
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    (folder / "known_hosts").write_text("")
    cache = folder / "board-cache"
    cache.mkdir()
    port = free_port()
    (folder / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {inside}/host_ed25519
AuthorizedKeysFile {inside}/authorized_keys
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
SetEnv {" ".join(f"{k}={v}" for k, v in {"XDG_CACHE_HOME": f"{inside}/board-cache", **(session_env or {})}.items())}
LogLevel VERBOSE
""")
    (folder / "ssh_config").write_text(f"""\
Host *
  IdentityFile {folder}/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {folder}/known_hosts
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
""")
    for privsep in ([root / "run/sshd"] if root else [Path("/run/sshd")]):
        privsep.mkdir(parents=True, exist_ok=True)
    log = open(folder / "sshd.log", "wb")  # noqa: SIM115 - the server's stderr for its whole life
    proc = subprocess.Popen([*board_prefix, SSHD, "-D", "-e", "-f", f"{inside}/sshd_config"], stdout=log,
                            stderr=subprocess.STDOUT)
    server = Sshd(port, folder, cache, proc, user or getpass.getuser())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited ({proc.returncode}): {(folder / 'sshd.log').read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"sshd did not listen on {port} within {timeout:.0f} s")


def board_python() -> str:
    """The interpreter the board venv is made from: $HARNESS_TEST_BOARD_PYTHON, else python3.12 (another
    version than the test's, so a record's host.python tells where it ran), else this one."""
    pyenv = sorted((Path.home() / ".pyenv" / "versions").glob("3.12*/bin/python3"))
    for candidate in (os.environ.get("HARNESS_TEST_BOARD_PYTHON"), shutil.which("python3.12"), *map(str, pyenv)):
        if candidate:
            proc = subprocess.run([candidate, "-c", "import sys; print(sys.executable)"], capture_output=True,
                                  text=True)
            if proc.returncode == 0:  # a pyenv shim without that version fails here
                return proc.stdout.strip()
    return sys.executable


def board_venv() -> Path:
    """A venv with numpy, Pillow and ai-edge-litert only, built once (uv) and reused; returns its python."""
    base = board_python()
    key = hashlib.sha256(repr((os.path.realpath(base), BOARD_PACKAGES)).encode()).hexdigest()[:12]
    home = Path(os.environ.get("HARNESS_TEST_CACHE") or Path.home() / ".cache" / "centernet-harness" / "test-boards")
    final = home / f"venv-{key}"
    if not (final / "bin" / "python").exists():
        home.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".venv-", dir=home))
        subprocess.run(["uv", "venv", "-q", "--python", base, str(tmp)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(tmp / "bin" / "python"), *BOARD_PACKAGES],
                       check=True)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)  # bin/python works from its new place (the scripts would not; none is used)
    return final / "bin" / "python"
