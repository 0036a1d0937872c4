"""A labgrid board farm on 127.0.0.1 for tests: a real labgrid-coordinator and labgrid-exporter exporting
NetworkServices. Places are made, read and freed through the coordinator's gRPC service directly (AddPlace,
AddPlaceMatch, GetPlaces, ReleasePlace: milliseconds, where a labgrid-client call costs 0.5 to 2 s of Python
start-up); acquiring as another user goes through labgrid-client, which opens the session labgrid ties it to.
Who holds a place is read from the coordinator's own record, not from the code under test.

Reusable: `labgrid_farm(workdir, {"board-1": NetworkService(port=...)})` is a context manager that yields a
`Farm`; the end-to-end test plugs the emulated board's sshd port in the same way. Every process it starts is
killed on exit (SIGKILL: the farm's state lives in WORKDIR and is thrown away), also when start-up fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

BIN = Path(sys.executable).parent
EXPORTER_NAME = "farm-exporter"
START_TIMEOUT = 20.0


def labgrid_tool(name: str) -> Path | None:
    """labgrid's console script NAME beside this Python (the venv's), or None where labgrid is not installed."""
    path = BIN / name
    return path if os.access(path, os.X_OK) else None


def have_labgrid() -> bool:
    return all(labgrid_tool(n) for n in ("labgrid-coordinator", "labgrid-exporter", "labgrid-client"))


class NetworkService(NamedTuple):
    """One NetworkService resource as the exporter's YAML config states it."""

    port: int
    username: str = "root"
    address: str = "127.0.0.1"


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _log(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


@dataclass
class Farm:
    """A running coordinator (ADDRESS) and one exporter (EXPORTER_NAME) with a group per NetworkService."""

    address: str
    workdir: Path
    groups: tuple[str, ...]
    startup_s: dict[str, float] = field(default_factory=dict)  # measured: coordinator, exporter
    procs: list[subprocess.Popen] = field(default_factory=list)

    def alive(self) -> list[int]:
        """The pids of this farm's processes still running."""
        return [p.pid for p in self.procs if p.poll() is None]

    def client(self, *args: str, user: str | None = None, host: str | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """labgrid-client against this farm, as USER on HOST where given ($LG_USERNAME, $LG_HOSTNAME)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
        env |= {"LG_USERNAME": user} if user else {}
        env |= {"LG_HOSTNAME": host} if host else {}
        proc = subprocess.run([str(labgrid_tool("labgrid-client")), "-x", self.address, *args], env=env,
                              capture_output=True, text=True, timeout=30)
        if check and proc.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def coordinator_log(self) -> str:
        """What the coordinator printed so far (it prints `PLACE: place acquired by HOST/USER`, `place released`)."""
        return (self.workdir / "coordinator.log").read_text(errors="replace")

    def rpc(self, method: str, **request):
        """Call the coordinator's unary gRPC METHOD (e.g. "AddPlace") with REQUEST's fields."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        from labgrid.remote.generated import labgrid_coordinator_pb2_grpc as pb_grpc

        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.CoordinatorStub(channel)
            return getattr(stub, method)(getattr(pb, f"{method}Request")(**request), timeout=10)

    def add_place(self, name: str, group: str, cls: str = "NetworkService") -> str:
        """A place NAME that matches GROUP's resource of class CLS on this farm's exporter."""
        self.rpc("AddPlace", name=name)
        self.rpc("AddPlaceMatch", placename=name, pattern=f"{EXPORTER_NAME}/{group}/{cls}")
        return name

    def holder(self, place: str) -> str | None:
        """Who holds PLACE (HOST/USER) in the coordinator's record, None when it is free."""
        found = [p for p in self.rpc("GetPlaces").places if p.name == place]
        assert found, f"no place {place} on the coordinator"
        return found[0].acquired or None  # the coordinator sends "" for a free place

    def free(self, place: str) -> None:
        """Release PLACE whoever holds it (a test's clean-up: one exported resource serves one held place)."""
        if self.holder(place) is not None:
            self.rpc("ReleasePlace", placename=place)


def _start(argv: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                env={**{k: v for k, v in os.environ.items() if not k.startswith("LG_")},
                                     "PYTHONUNBUFFERED": "1"},  # its log shows each event as it happens
                                start_new_session=True)


def _wait(proc: subprocess.Popen, log: Path, ready, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_log(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {START_TIMEOUT:g} s:\n{_log(log)}")
        time.sleep(0.05)


def exporter_config(services: dict[str, NetworkService], extra: dict[str, str] | None = None) -> str:
    """The exporter's YAML: one group per service, each with a NetworkService; EXTRA adds groups as YAML text."""
    text = "".join(f"{group}:\n  NetworkService:\n    address: '{s.address}'\n    username: '{s.username}'\n"
                   f"    port: {s.port}\n" for group, s in services.items())
    return text + "".join(f"{group}:\n{body}" for group, body in (extra or {}).items())


@contextmanager
def labgrid_farm(workdir: Path, services: dict[str, NetworkService], extra: dict[str, str] | None = None
                 ) -> Iterator[Farm]:
    """Start a coordinator on 127.0.0.1 (a free port its kernel picks) and an exporter of SERVICES (and the
    groups in EXTRA, YAML text by group name); yield the farm once every group is listed; kill both on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        t0 = time.monotonic()
        log = workdir / "coordinator.log"
        coord = _start([str(labgrid_tool("labgrid-coordinator")), "--listen", "127.0.0.1:0"], log, workdir)
        stack.callback(_kill, coord)
        _wait(coord, log, lambda: "listening on" in _log(log), "labgrid-coordinator")
        address = re.search(r"listening on (\S+)", _log(log)).group(1)
        farm = Farm(address, workdir, (*services, *(extra or {})), {"coordinator": time.monotonic() - t0}, [coord])

        t0 = time.monotonic()
        config = workdir / "exporter.yaml"
        config.write_text(exporter_config(services, extra))
        log = workdir / "exporter.log"
        exporter = _start([str(labgrid_tool("labgrid-exporter")), "-c", address, "-n", EXPORTER_NAME,
                           "--hostname", "127.0.0.1", str(config)], log, workdir)
        stack.callback(_kill, exporter)
        farm.procs.append(exporter)
        want = {f"{EXPORTER_NAME}/{group}/" for group in farm.groups}

        def listed() -> bool:  # the exporter's log first (free), then labgrid-client (a second a call)
            if "connected to coordinator" not in _log(log):
                return False
            have = farm.client("resources", check=False).stdout.split()
            return all(any(r.startswith(w) for r in have) for w in want)

        _wait(exporter, log, listed, "labgrid-exporter")
        farm.startup_s["exporter"] = time.monotonic() - t0
        yield farm
