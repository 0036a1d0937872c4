"""A board in a labgrid farm (`--on labgrid:PLACE`): acquire the place, reach the board through the place's
NetworkService, release the place afterwards, also when the run fails or is interrupted.

Why labgrid's `labgrid-client` CLI in a subprocess, not its Python API: the CLI and its commands (`acquire`,
`env`, `release-from`) are labgrid's documented, stable interface, while its gRPC client (`ClientSession`) is
asyncio internals that change between releases. A subprocess also keeps grpc out of the harness process, and
lets a labgrid installed elsewhere serve ($HARNESS_LABGRID_CLIENT names its `labgrid-client`), should its
grpcio/protobuf pins ever clash with the runtimes'. Cost: about half a second per call, three calls a run.

Decisions:
- A place already held by THIS user on this host is refused, with the command that releases it: an earlier
  run that crashed and a run going on in another terminal look the same, and releasing a live run's place
  would pull the board from under it. A place held by anyone else is refused naming the holder, untouched.
- Release is `release-from HOST/USER`: the coordinator releases the place only if this identity still holds
  it, so a place that was kicked and taken by someone else meanwhile is left alone.
- labgrid-client runs in a session of its own, so a Ctrl-C at the terminal cannot kill it halfway; the
  interrupt is raised once the call has returned, so it is always known whether the place is held.
- Fail fast: the coordinator's TCP port is probed first (`connect_timeout`, skipped under $LG_PROXY, where
  labgrid reaches it through SSH), and each labgrid-client call is bounded by `timeout` (labgrid itself waits
  20 s on a peer that accepts the connection but does not answer).

Not supported (refused, or said here): a NetworkService reached only through the exporter (an address with
`%interface`, or an exporter run with --isolated, which `env` does not show: its address is used directly);
its password (the SSH runner uses keys). labgrid's place lookup is its own: a unique part of a name or alias
selects the place; the place actually acquired is the one released.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from harness.errors import HarnessError, first_line

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default when neither -x nor $LG_COORDINATOR is given
COORDINATOR_PORT = 20408
CLIENT_ENV = "HARNESS_LABGRID_CLIENT"
INSTALL_HINT = "pip install 'centernet-harness[farm]'"
# labgrid-client reads these to pick a place and drive a strategy; this module names the place itself.
_DROPPED_ENV = ("LG_ENV", "LG_PLACE", "PLACE", "LG_STATE", "STATE", "LG_INITIAL_STATE", "LG_TOKEN")


class PlaceAddress(NamedTuple):
    """Where the place's board answers SSH: the NetworkService's username, address and port (None: 22)."""

    user: str | None
    host: str
    port: int | None


def identity() -> str:
    """HOST/USER as labgrid names the holder of a place ($LG_HOSTNAME and $LG_USERNAME override, as in labgrid)."""
    host = os.environ.get("LG_HOSTNAME") or socket.gethostname()
    user = os.environ.get("LG_USERNAME") or getpass.getuser()
    return f"{host}/{user}"


def coordinator_address(coordinator: str | None = None) -> str:
    """The coordinator as labgrid-client would pick it: the argument, $LG_COORDINATOR, labgrid's default."""
    return coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def find_client(client: str | None = None) -> str:
    """The labgrid-client to run: CLIENT, $HARNESS_LABGRID_CLIENT, the one beside this Python, then PATH."""
    explicit = client or os.environ.get(CLIENT_ENV)
    if explicit:
        found = shutil.which(explicit)
        if not found:
            raise HarnessError(f"labgrid client {explicit} is not an executable (from {CLIENT_ENV} or client=)")
        return found
    beside = Path(sys.executable).parent / "labgrid-client"  # a venv's scripts, also when it is not activated
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("labgrid-client")
    if not found:
        raise HarnessError(f"labgrid is not installed (no labgrid-client); for --on labgrid:PLACE run: {INSTALL_HINT}")
    return found


def probe(address: str, timeout: float) -> None:
    """Refuse in one line, within TIMEOUT seconds, a coordinator whose TCP port does not accept a connection."""
    parts = urlsplit(f"//{address}")
    try:
        host, port = parts.hostname, parts.port or COORDINATOR_PORT
    except ValueError as exc:
        raise HarnessError(f"labgrid coordinator address {address!r} is not HOST[:PORT] ({exc})") from None
    if not host:
        raise HarnessError(f"labgrid coordinator address {address!r} is not HOST[:PORT]")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise HarnessError(f"labgrid coordinator at {address} is unreachable ({first_line(exc, with_type=True)}); "
                           "set it with $LG_COORDINATOR=HOST:PORT") from None


class _Call(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    interrupted: bool  # a Ctrl-C arrived while the call ran; the caller raises it once it has acted on the result


def _run(argv: list[str], timeout: float, what: str) -> _Call:
    """ARGV to the end, in a session of its own (a terminal's Ctrl-C does not reach it); Ctrl-C here is deferred.
    WHAT names the call in the error when it gives no answer within TIMEOUT seconds."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    interrupted = False
    while True:
        try:
            out, err = proc.communicate(timeout=timeout)
            return _Call(proc.returncode, out, err, interrupted)
        except KeyboardInterrupt:
            interrupted = True  # communicate() resumes where it stopped; the child finishes its call
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise HarnessError(f"{what} gave no answer in {timeout:g} s") from None


def _message(call: _Call) -> str:
    """labgrid-client's own one-line reason, without its `labgrid-client:`/`Server error: Error:` prefixes."""
    lines = [ln.strip() for ln in (call.stderr or call.stdout).splitlines() if ln.strip()]
    line = lines[-1] if lines else f"exit status {call.returncode}"
    for prefix in ("labgrid-client:", "Server error:", "Error:"):
        line = line.removeprefix(prefix).strip()
    return line


class _Place:
    """One labgrid-client, coordinator and place pattern; the commands this module needs, with their errors."""

    def __init__(self, client: str, address: str, place: str, timeout: float):
        self.client, self.address, self.pattern, self.timeout = client, address, place, timeout
        self.me = identity()

    def call(self, place: str, *command: str, hint: str = "") -> _Call:
        what = f"labgrid-client {command[0]} of place {place} (coordinator {self.address}){hint}"
        return _run([self.client, "-x", self.address, "-p", place, *command], self.timeout, what)

    def acquire(self) -> tuple[str | None, bool]:
        """(the place's full name or None when refused, interrupted); raises HarnessError on a refusal."""
        check = f"; the place may be held now: labgrid-client -x {self.address} -p {self.pattern} show"
        call = self.call(self.pattern, "acquire", hint=check)
        if call.returncode == 0:
            name = next((ln.split("acquired place ", 1)[1].strip() for ln in call.stdout.splitlines()
                         if ln.startswith("acquired place ")), self.pattern)
            return name, call.interrupted
        if call.interrupted:
            return None, True
        raise HarnessError(self.refusal(_message(call)))

    def refusal(self, reason: str) -> str:
        """labgrid's reason for not acquiring, as a one-line error that says what to do."""
        addr, pattern = self.address, self.pattern
        if "Could not connect to coordinator" in reason:
            return f"labgrid coordinator at {addr} is unreachable (it accepts connections but labgrid-client " \
                   f"could not open a session); set it with $LG_COORDINATOR=HOST:PORT"
        if reason.startswith(f"place pattern {pattern} matches nothing"):
            return f"labgrid coordinator {addr} has no place '{pattern}' (list them: labgrid-client -x {addr} places)"
        if reason.startswith("You have already acquired place ") and " on " not in reason:
            name = reason.removeprefix("You have already acquired place ").rstrip(".")
            return (f"labgrid place {name} is already held by you ({self.me}): by another run, or one that crashed; "
                    f"if no run of yours uses it, release it: labgrid-client -x {addr} -p {name} release")
        if reason.startswith("You have already acquired place "):  # the same user, on another host
            name, rest = reason.removeprefix("You have already acquired place ").split(" on ", 1)
            holder = f"{rest.split('. ', 1)[0].rstrip('.')}/{self.me.split('/', 1)[1]}"
            return f"labgrid place {name} is held by {holder} (you, on another host); release it there first"
        if reason.startswith("Place ") and " is already acquired by " in reason:
            name, rest = reason.removeprefix("Place ").split(" is already acquired by ", 1)
            holder = rest.split(". ", 1)[0].rstrip(".")
            return f"labgrid place {name} is held by {holder}; wait for it to be released, or ask {holder} to"
        return f"labgrid could not acquire place '{pattern}' on {addr}: {reason}"

    def network_service(self, name: str) -> PlaceAddress:
        """The address of the acquired place's one NetworkService."""
        call = self.call(name, "env")
        if call.interrupted:
            raise KeyboardInterrupt
        if call.returncode != 0:
            raise HarnessError(f"labgrid place {name}: cannot read its resources: {_message(call)}")
        services = _services(call.stdout, name)
        if len(services) != 1:
            has = f"it has {len(services)}" if services else "it has none (add-match one)"
            raise HarnessError(f"labgrid place {name} needs one NetworkService to reach the board by SSH; {has}")
        args = services[0]
        host, user, port = str(args.get("address", "")), args.get("username"), args.get("port")
        if not host or "%" in host:
            raise HarnessError(f"labgrid place {name}: NetworkService address {host!r} is reachable only through "
                               "its exporter (labgrid's proxy), which --on labgrid: does not support")
        return PlaceAddress(str(user) if user else None, host, int(port) if port is not None else None)

    def release(self, name: str, *, strict: bool) -> None:
        """Release NAME if this identity holds it. Failure: an error when STRICT, else a warning on stderr
        (the run's own exception is the one to show)."""
        call = self.call(name, "release-from", self.me)
        if call.returncode != 0:
            msg = (f"labgrid place {name} may still be held by {self.me}: {_message(call)}; "
                   f"release it: labgrid-client -x {self.address} -p {name} release")
            if strict:
                raise HarnessError(msg)
            print(f"harness: warning: {msg}", file=sys.stderr)
        if call.interrupted and strict:
            raise KeyboardInterrupt


def _services(env_yaml: str, name: str) -> list[dict]:
    """The NetworkService arguments in `labgrid-client env` output (an environment config for the place)."""
    try:
        import yaml  # labgrid's own dependency: present wherever the farm extra is
    except ImportError:
        raise HarnessError(f"reading a labgrid place needs PyYAML: {INSTALL_HINT}") from None
    try:
        config = yaml.safe_load(env_yaml) or {}
        targets = config["targets"]
        resources = next(iter(targets.values()))["resources"] if targets else []
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, StopIteration) as exc:
        raise HarnessError(f"labgrid place {name}: unexpected labgrid-client env output ({first_line(exc)})") from None
    return [dict(r["NetworkService"] or {}) for r in resources or [] if isinstance(r, dict) and "NetworkService" in r]


@contextmanager
def reach_place(place: str, coordinator: str | None = None, *, client: str | None = None, timeout: float = 15.0,
                connect_timeout: float = 3.0) -> Iterator[PlaceAddress]:
    """Acquire PLACE on the labgrid coordinator (default: $LG_COORDINATOR, labgrid's own default otherwise),
    yield the address of its NetworkService resource, release the place on exit, also when the body raises.

    CLIENT (or $HARNESS_LABGRID_CLIENT) names the labgrid-client to run; TIMEOUT bounds each labgrid-client
    call, CONNECT_TIMEOUT the probe of the coordinator's port (seconds).
    """
    lg = _Place(find_client(client), coordinator_address(coordinator), place, timeout)
    if not os.environ.get("LG_PROXY"):
        probe(lg.address, connect_timeout)
    name, interrupted = lg.acquire()
    if interrupted:
        if name is not None:
            lg.release(name, strict=False)
        raise KeyboardInterrupt
    assert name is not None
    try:
        address = lg.network_service(name)
        yield address
    except BaseException:
        lg.release(name, strict=False)
        raise
    lg.release(name, strict=True)
