"""`--on labgrid:PLACE`: harness.boards.labgrid.reach_place against a real labgrid coordinator and exporter on
127.0.0.1 (tests/labgrid_farm.py). Who holds a place is read back from `labgrid-client show` (labgrid's own
account, not this module's); the address yielded is checked by connecting to the TCP service the test started.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib.util import find_spec
from pathlib import Path

import pytest
from labgrid_farm import Farm, NetworkService, have_labgrid, labgrid_farm

from harness.boards import labgrid as lg
from harness.boards.labgrid import PlaceAddress, reach_place
from harness.errors import HarnessError

pytestmark = pytest.mark.skipif(not have_labgrid(), reason="labgrid is not installed (pip install '.[farm]')")

ME_HOST, ME_USER = "ci-host", "tester"  # who this process is to labgrid ($LG_HOSTNAME, $LG_USERNAME)
BANNER = f"SSH-2.0-farm-test-{secrets.token_hex(4)}\r\n"  # what the exported service answers, unique per run
POWER_GROUP = "power-1"  # an exported resource that is not a NetworkService


@pytest.fixture(scope="module")
def banner_port():
    """A real TCP service on 127.0.0.1 that greets like sshd with BANNER and closes."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(BANNER.encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
def farm(tmp_path_factory, banner_port):
    """One coordinator and exporter for the module: `board-1` exports the banner service as root."""
    extra = {POWER_GROUP: "  NetworkPowerPort:\n    model: gude\n    host: 127.0.0.1\n    index: 1\n"}
    with labgrid_farm(tmp_path_factory.mktemp("farm"), {"board-1": NetworkService(banner_port)}, extra) as f:
        print(f"farm start-up: {f.startup_s}")
        pids = f.alive()
        assert len(pids) == 2  # coordinator and exporter
        yield f
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), f"farm processes left running: {pids}"


@pytest.fixture
def me(monkeypatch):
    monkeypatch.setenv("LG_HOSTNAME", ME_HOST)
    monkeypatch.setenv("LG_USERNAME", ME_USER)
    return f"{ME_HOST}/{ME_USER}"


@pytest.fixture
def place(farm: Farm, request):
    """A fresh place matching board-1's NetworkService, named after the test, freed after it."""
    name = farm.add_place(request.node.name.replace("_", "-")[:40], "board-1")
    yield name
    farm.free(name)


def banner_at(address: PlaceAddress) -> str:
    with socket.create_connection((address.host, address.port), timeout=5) as conn:
        return conn.makefile().readline()


def test_reach_place_yields_the_network_service_and_holds_the_place_until_exit(farm, place, me, banner_port):
    t0 = time.monotonic()
    with reach_place(place, farm.address) as address:
        entered = time.monotonic() - t0
        assert address == PlaceAddress("root", "127.0.0.1", banner_port)
        assert banner_at(address) == BANNER.replace("\r\n", "\n")  # the service the test started, through it
        assert farm.holder(place) == me
        t0 = time.monotonic()
    left = time.monotonic() - t0
    assert farm.holder(place) is None
    print(f"reach_place: acquire + env {entered:.2f} s, release {left:.2f} s")


def test_a_place_is_released_when_the_body_raises(farm, place, me):
    with pytest.raises(RuntimeError, match="bench failed"), reach_place(place, farm.address):
        assert farm.holder(place) == me
        raise RuntimeError("bench failed on the board")
    assert farm.holder(place) is None


def test_a_place_is_released_on_ctrl_c(farm, place, me):
    with pytest.raises(KeyboardInterrupt), reach_place(place, farm.address):
        raise KeyboardInterrupt
    assert farm.holder(place) is None


def interrupt_when(ready, timeout: float = 60.0) -> threading.Thread:
    """A Ctrl-C to this process, as a terminal would send it, as soon as READY() is true: on a loaded machine a
    fixed delay can fall before the child starts or after it ends."""
    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def child_running(*words: str):
    """READY for interrupt_when: a child of this process whose command line holds every word."""
    me = str(os.getpid())

    def ready() -> bool:
        for d in Path("/proc").iterdir():
            try:
                stat = (d / "stat").read_text()
                argv = (d / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if stat[stat.rindex(")") + 2:].split()[1] == me and all(w in argv for w in words):
                return True
        return False
    return ready


@pytest.fixture
def terminal_sigint():
    """SIGINT handled as in a terminal's foreground process: a job started in the background by a shell without
    job control (as CI may start the suite) inherits SIGINT ignored, and then no Ctrl-C reaches Python at all."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.mark.usefixtures("terminal_sigint")
def test_ctrl_c_during_a_labgrid_call_waits_for_it_to_finish(tmp_path):
    started = tmp_path / "started"
    code = f"import os, time; open({str(started)!r}, 'w').close(); time.sleep(1.0); print(os.getsid(0))"
    watcher = interrupt_when(started.exists)
    call = lg._run([sys.executable, "-c", code], timeout=30, what="test")
    watcher.join()
    assert call.interrupted and call.returncode == 0  # finished its work, not killed halfway
    assert int(call.stdout) != os.getsid(0)  # its own session: a terminal's Ctrl-C does not reach it


@pytest.mark.usefixtures("terminal_sigint")
def test_ctrl_c_while_acquiring_releases_what_was_acquired(farm, place, me):
    watcher = interrupt_when(child_running("acquire"))  # during labgrid-client acquire
    with pytest.raises(KeyboardInterrupt), reach_place(place, farm.address):
        pytest.fail("entered the body after a Ctrl-C")
    watcher.join()
    log = farm.coordinator_log()
    assert f"{place}: place acquired by {me}" in log  # the acquire ran to its end ...
    assert f"{place}: place released" in log  # ... and what it got was given back
    assert farm.holder(place) is None


def test_a_place_held_by_another_user_is_refused_naming_them_and_left_alone(farm, place, me):
    farm.client("-p", place, "acquire", user="alice", host="bench-7")
    with pytest.raises(HarnessError) as err, reach_place(place, farm.address):
        pytest.fail("entered a place someone else holds")
    assert "bench-7/alice" in str(err.value) and place in str(err.value)
    assert "\n" not in str(err.value)
    assert farm.holder(place) == "bench-7/alice"


def test_the_same_user_on_another_host_is_a_holder_too(farm, place, me):
    farm.client("-p", place, "acquire", user=ME_USER, host="laptop")
    with pytest.raises(HarnessError, match=f"held by laptop/{ME_USER}"), reach_place(place, farm.address):
        pytest.fail("entered a place held elsewhere")
    assert farm.holder(place) == f"laptop/{ME_USER}"


def test_a_place_this_user_already_holds_is_refused_with_the_command_that_releases_it(farm, place, me):
    farm.client("-p", place, "acquire", user=ME_USER, host=ME_HOST)  # as a crashed earlier run left it
    with pytest.raises(HarnessError) as err, reach_place(place, farm.address):
        pytest.fail("took over a place an earlier run holds")
    msg = str(err.value)
    assert "\n" not in msg and f"held by you ({me})" in msg
    assert farm.holder(place) == me  # refused, not released
    command = shlex.split(msg.rsplit("release it: ", 1)[1])
    assert command[0] == "labgrid-client"
    farm.client(*command[1:], user=ME_USER, host=ME_HOST)  # the command the message gives does release it
    assert farm.holder(place) is None


def test_an_unknown_place_is_one_line(farm, me):
    with pytest.raises(HarnessError) as err, reach_place("no-such-board", farm.address):
        pytest.fail("entered an unknown place")
    assert str(err.value) == (f"labgrid coordinator {farm.address} has no place 'no-such-board' "
                              f"(list them: labgrid-client -x {farm.address} places)")


def test_a_place_without_network_service_is_refused_and_released(farm, me):
    place = farm.add_place("power-only", POWER_GROUP, cls="NetworkPowerPort")
    assert farm.holder(place) is None
    with pytest.raises(HarnessError, match=r"power-only needs one NetworkService .* it has none"), \
            reach_place(place, farm.address):
        pytest.fail("entered a place without a NetworkService")
    assert farm.holder(place) is None


def test_lg_coordinator_is_the_default_address(farm, place, me, monkeypatch, banner_port):
    monkeypatch.setenv("LG_COORDINATOR", farm.address)
    with reach_place(place) as address:
        assert address.port == banner_port
    assert farm.holder(place) is None


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_coordinator_is_one_line_and_quick():
    address = f"127.0.0.1:{closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(HarnessError) as err, reach_place("board", address):
        pytest.fail("reached a board with no coordinator")
    elapsed = time.monotonic() - t0
    assert str(err.value).startswith(f"labgrid coordinator at {address} is unreachable (ConnectionRefusedError")
    assert elapsed < 1.0, elapsed
    print(f"unreachable coordinator refused in {elapsed:.3f} s")


def test_a_coordinator_that_accepts_but_never_answers_is_cut_off_at_the_timeout():
    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody speaks gRPC
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    t0 = time.monotonic()
    try:
        with pytest.raises(HarnessError, match=r"acquire of place board .* gave no answer in 2 s"), \
                reach_place("board", address, timeout=2):
            pytest.fail("reached a board through a silent coordinator")
    finally:
        silent.close()
    elapsed = time.monotonic() - t0
    assert elapsed < 4.0, elapsed  # labgrid alone waits 20 s for the peer's first frame
    left = subprocess.run(["pgrep", "-f", f"labgrid-client -x {address}"], capture_output=True, text=True)
    assert left.stdout == "", f"labgrid-client left running: {left.stdout}"


def test_no_labgrid_says_which_extra_to_install(monkeypatch, tmp_path: Path):
    monkeypatch.delenv(lg.CLIENT_ENV, raising=False)
    monkeypatch.setattr(lg.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessError, match=r"labgrid is not installed .*pip install 'centernet-harness\[farm\]'"):
        lg.find_client()


def test_a_client_named_by_the_environment_is_used(monkeypatch):
    monkeypatch.setenv(lg.CLIENT_ENV, "/nonexistent/labgrid-client")
    with pytest.raises(HarnessError, match="/nonexistent/labgrid-client is not an executable"):
        lg.find_client()


# --- through the SSH runner: `harness bench --on labgrid:PLACE` against a real sshd behind a place -------------

HAVE_SSH = all(find_spec(name) for name in ("sshd", "harness.boards.targets"))
needs_ssh = pytest.mark.skipif(not HAVE_SSH, reason="not merged yet: tests/sshd.py, harness/boards/targets.py")
REPO = Path(__file__).resolve().parents[1]
SSH_PLACE = "ssh-board"


@pytest.fixture(scope="module")
def ssh_farm(tmp_path_factory):
    """A farm whose place SSH_PLACE exports a real sshd on 127.0.0.1 (tests/sshd.py), and that sshd."""
    import sshd

    folder = tmp_path_factory.mktemp("ssh-farm")
    server = sshd.start_sshd(folder / "sshd")
    server.trust()
    try:
        with labgrid_farm(folder / "farm", {SSH_PLACE: NetworkService(server.port, username=server.user)}) as farm:
            farm.add_place(SSH_PLACE, SSH_PLACE)
            yield farm, server
        assert not farm.alive()
    finally:
        server.stop()


def bench_on_place(farm: Farm, server, python: str, out: Path, mirror: Path) -> subprocess.CompletedProcess[str]:
    env = {**server.env(), "LG_COORDINATOR": farm.address, "HARNESS_MIRROR": str(mirror),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env = {k: v for k, v in env.items() if k not in ("LG_HOSTNAME", "LG_USERNAME")}
    return subprocess.run([sys.executable, "-m", "harness", "bench", "mb3-centernet-int8",
                           "--on", f"labgrid:{SSH_PLACE}?python={python}", "--warmup", "1", "--min-count", "5",
                           "--min-duration", "0", "--e2e-min-count", "2", "--e2e-min-duration", "0",
                           "--json", str(out), "--quiet"], env=env, capture_output=True, text=True, timeout=600)


def sessions(server) -> int:
    """Logins sshd accepted so far (its own log)."""
    return (server.folder / "sshd.log").read_text(errors="replace").count("Accepted publickey")


@needs_ssh
def test_bench_runs_through_a_place_over_ssh_and_releases_it(ssh_farm, tmp_path, mirror):
    import sshd

    farm, server = ssh_farm
    board_python = sshd.board_venv()
    version = subprocess.run([str(board_python), "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    before = sessions(server)
    proc = bench_on_place(farm, server, str(board_python), tmp_path / "bench.json", mirror)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "bench.json").read_text())
    assert record["host"]["python"] == version  # measured by the board's Python, reached through the place
    assert sessions(server) > before  # through the sshd the place exports
    assert f"{SSH_PLACE}: place acquired by " in farm.coordinator_log()
    assert farm.holder(SSH_PLACE) is None


@needs_ssh
def test_a_failed_run_through_a_place_releases_it(ssh_farm, tmp_path, mirror):
    farm, server = ssh_farm
    acquired = farm.coordinator_log().count(f"{SSH_PLACE}: place acquired by ")
    proc = bench_on_place(farm, server, "/no/such/python3", tmp_path / "bench.json", mirror)
    assert proc.returncode == 2 and proc.stderr.startswith("harness: error: "), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert farm.coordinator_log().count(f"{SSH_PLACE}: place acquired by ") == acquired + 1  # it got the board
    assert farm.holder(SSH_PLACE) is None  # and gave it back
    assert not (tmp_path / "bench.json").exists()
