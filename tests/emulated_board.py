"""An emulated aarch64 board: a Debian bookworm arm64 root run under qemu-user, with the harness installed.

API (stable; the nox session `board-arm64`, tests/arm64/ and the SSH tests use it):

- `arm64_root(variant="litert") -> Path`: a ready root for VARIANT (see VARIANTS), built once and reused
  from the cache folder ($HARNESS_BOARD_CACHE, default ~/.cache/centernet-harness/boards). A root's folder
  name carries a hash of what went into it (suite, packages, variant, the project's source), so a changed
  source gets a fresh root; every root is built in a temporary folder and renamed when complete, so an
  interrupted build is never reused. The base root (debootstrap, shared by the variants) has openssh-server.
  In a variant root the harness lives in the venv VENV (`--system-site-packages`: the distro's numpy 1.24
  and Pillow 9.4), its `harness` at VENV/bin/harness.
- `board_argv(root, argv, *, env=None, cwd=None) -> list[str]`: the host command that runs ARGV inside ROOT
  (for Popen, e.g. a long-running sshd). It runs in a private mount namespace (`unshare -m`) where /proc,
  /sys, /dev and the mirror (read-only, at the same path as on the host) are mounted: the mounts vanish with
  the process, whatever happens to it, and concurrent runs never unmount each other's. The emulated CPU is
  a Cortex-A53 (QEMU_CPU; $HARNESS_BOARD_QEMU_CPU overrides it).
- `run_in_board(root, argv, *, env=None, cwd=None, timeout=None) -> subprocess.CompletedProcess[str]`: the
  same, run to the end with output captured.
- `BoardUnavailable`: raised (one line) where no root can be made: not root, no binfmt_misc, no apt-get.

Needs root, debootstrap and qemu-user-static with binfmt (qemu-aarch64); `ensure_host_tools()` installs
them with apt-get where missing and enables the binfmt entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("HARNESS_MIRROR") or REPO.parent / "shared" / "mirror")
SUITE = "bookworm"
DEBIAN_URL = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-numpy", "python3-pil", "python3-venv", "python3-pip", "openssh-server",
            "ca-certificates")
VENV = "/opt/venv"
SOURCE_IN_ROOT = "/opt/harness-src"
# What pip installs into VENV beside the distro's numpy and Pillow. litert: the project's board extra and
# faster-coco-eval (eval's default engine); bsp: as an i.MX Yocto image ships it, tflite-runtime instead.
# ai-edge-litert 2.2.0 and 2.3.0 crash (SIGSEGV in allocate_tensors, any QEMU_CPU) under Debian's qemu-user
# 7.2, with numpy 1.24 and 2.4 alike; 2.1.6 and 1.4.0 run. Measured 2026-12-06 on bookworm's qemu-user-static.
VARIANTS: dict[str, tuple[str, ...]] = {
    "litert": (f"{SOURCE_IN_ROOT}[board]", "ai-edge-litert<2.2", "faster-coco-eval"),
    "bsp": (SOURCE_IN_ROOT, "tflite-runtime==2.14.0", "faster-coco-eval"),
}
# The project files a wheel is built from; the source hash covers all but the README (only the wheel's
# long description), so an edit to the prose does not cost a rebuild.
SOURCE_FILES = ("pyproject.toml", "README.md", "harness", "datasets")
UNHASHED = ("README.md",)
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
BOARD_PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The emulated core: an i.MX 8M's Cortex-A53. qemu's default ("max") offers SVE and SME, and XNNPACK's f32
# kernels for them run 10x slower under emulation (one mb3-centernet-f32 invoke: 248 s against 22 s).
QEMU_CPU = os.environ.get("HARNESS_BOARD_QEMU_CPU", "cortex-a53")
# What a session started by the board's own sshd needs (sshd clears the environment): on "max", the int8 model's
# detections over SSH were garbage (100 boxes an image of negative width, score 0.91) where the same eval in
# the board, on the Cortex-A53, matched x86. Measured 2026-12-06.
SESSION_ENV = {"QEMU_CPU": QEMU_CPU}
# Part of every variant root's key: raise it when the way a variant is installed changes.
RECIPE = 3


class BoardUnavailable(RuntimeError):
    """No emulated board can be made on this machine (the message says why, in one line)."""


def cache_dir() -> Path:
    return Path(os.environ.get("HARNESS_BOARD_CACHE") or Path.home() / ".cache" / "centernet-harness" / "boards")


def _log(msg: str) -> None:
    print(f"[emulated_board] {msg}", file=sys.stderr, flush=True)


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def source_hash(repo: Path = REPO) -> str:
    """sha256 of the files the installed harness is built from (paths and contents; caches, README left out)."""
    h = hashlib.sha256()
    for name in SOURCE_FILES:
        if name in UNHASHED:
            continue
        top = repo / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc":
                continue
            h.update(str(p.relative_to(repo)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


# --- the host: root, debootstrap, qemu-user with binfmt --------------------------------------------------

def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", *packages]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BoardUnavailable(f"apt-get install {' '.join(packages)} failed: {proc.stderr.strip()[-300:]}")


def ensure_host_tools() -> None:
    """Root, debootstrap, and qemu-aarch64 registered with binfmt_misc (installed and enabled if missing)."""
    if os.geteuid() != 0:
        raise BoardUnavailable("an emulated arm64 board needs root (debootstrap, chroot, mounts)")
    missing = [pkg for pkg, tool in (("debootstrap", "debootstrap"), ("qemu-user-static", "qemu-aarch64-static"))
               if shutil.which(tool) is None]
    if missing and shutil.which("update-binfmts") is None:
        missing.append("binfmt-support")
    if missing:
        if shutil.which("apt-get") is None:
            raise BoardUnavailable(f"missing {', '.join(missing)} and no apt-get to install them")
        _log(f"apt-get install {' '.join(missing)}")
        _apt_install(*missing)
    if not (BINFMT / "register").exists():
        proc = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise BoardUnavailable(f"cannot mount binfmt_misc: {proc.stderr.strip()}")
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True)
    if not entry.exists() or "enabled" not in entry.read_text():
        raise BoardUnavailable("qemu-aarch64 is not registered with binfmt_misc (update-binfmts --enable failed)")


# --- running inside a root ------------------------------------------------------------------------------

def _mount_script(root: Path) -> str:
    """Shell lines, run inside `unshare -m`, that mount what a root needs; the namespace drops them at exit."""
    r = str(root)
    lines = ["set -e", f"mount -t proc proc '{r}/proc'",
             f"mount -t sysfs sysfs '{r}/sys' 2>/dev/null || mount --rbind /sys '{r}/sys'",
             f"mount --rbind /dev '{r}/dev'"]
    if MIRROR.is_dir():
        target = f"{r}{MIRROR.resolve()}"
        lines += [f"mount --bind '{MIRROR.resolve()}' '{target}'", f"mount -o remount,bind,ro '{target}'"]
    return "\n".join(lines)


def board_argv(root: Path, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> list[str]:
    """The host command that runs ARGV in ROOT with a clean environment (PATH starts with the venv's bin)."""
    if MIRROR.is_dir():
        (Path(f"{root}{MIRROR.resolve()}")).mkdir(parents=True, exist_ok=True)
    base_env = {"PATH": BOARD_PATH, "HOME": "/root", "LANG": "C.UTF-8", "HARNESS_MIRROR": str(MIRROR.resolve()),
                "QEMU_CPU": QEMU_CPU,
                "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env_args = [f"{k}={v}" for k, v in {**base_env, **(env or {})}.items()]
    inner = ["/usr/bin/env", "-i", *env_args, "/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd or "/", *argv]
    script = _mount_script(root) + f'\nexec chroot "{root}" "$@"'
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "board", *inner]


def run_in_board(root: Path, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                 timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """ARGV inside ROOT, output captured as text; the mounts live only as long as the command."""
    return subprocess.run(board_argv(root, argv, env=env, cwd=cwd), capture_output=True, text=True, timeout=timeout)


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


# --- building roots ---------------------------------------------------------------------------------------

def _build(final: Path, fill) -> Path:
    """Build into a temporary sibling of FINAL with FILL(tmp) and rename it into place when complete; one
    process builds a given root at a time (the others wait on its lock file, then reuse the root)."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".lock-{final.name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".building-{final.name}-", dir=final.parent))
        try:
            fill(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def base_root() -> Path:
    """The debootstrapped arm64 root every variant starts from (minutes once, then reused)."""
    ensure_host_tools()
    final = cache_dir() / f"base-{SUITE}-{_digest(SUITE, DEBIAN_URL, PACKAGES)}"

    def fill(tmp: Path) -> None:
        _log(f"debootstrap {SUITE} arm64 into {tmp} (a few minutes)")
        proc = subprocess.run(["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                               SUITE, str(tmp), DEBIAN_URL], capture_output=True, text=True)
        _check(proc, "debootstrap")

    return _build(final, fill)


def _copy_source(root: Path) -> None:
    dest = Path(f"{root}{SOURCE_IN_ROOT}")
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


_PINS = "import numpy, PIL; print(f'numpy=={numpy.__version__}\\nPillow=={PIL.__version__}')"


def arm64_root(variant: str = "litert") -> Path:
    """A root for VARIANT with the harness installed in VENV, built (minutes) or reused from the cache."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    base = base_root()
    final = cache_dir() / f"{variant}-{_digest(base.name, RECIPE, variant, VARIANTS[variant], source_hash())}"

    def fill(tmp: Path) -> None:
        _log(f"{variant}: copying {base.name} and installing the harness (a few minutes under emulation)")
        tmp.rmdir()
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(tmp)], check=True)
        shutil.copy2("/etc/resolv.conf", tmp / "etc/resolv.conf")
        if HOST_CA.is_file():  # pip inside the root trusts what the host trusts (a proxy's CA included)
            shutil.copy2(HOST_CA, tmp / "etc/ssl/certs/ca-certificates.crt")
        _copy_source(tmp)
        _check(run_in_board(tmp, ["python3", "-m", "venv", "--system-site-packages", VENV]), "python3 -m venv")
        # The distro's numpy and Pillow stay: pip resolves the rest around them (else ml_dtypes >= 0.6, which
        # ai-edge-litert pulls in, would bring numpy 2 into the venv).
        pins = run_in_board(tmp, ["python3", "-c", _PINS])
        _check(pins, "reading the distro's numpy and Pillow versions")
        Path(f"{tmp}/opt/distro-pins.txt").write_text(pins.stdout)
        proc = run_in_board(tmp, [f"{VENV}/bin/pip", "install", "--no-cache-dir", "--constraint",
                                  "/opt/distro-pins.txt", *VARIANTS[variant]])
        _check(proc, f"pip install {' '.join(VARIANTS[variant])}")
        shutil.rmtree(f"{tmp}{SOURCE_IN_ROOT}")

    root = _build(final, fill)
    _prune(variant, keep=root)
    return root


def _prune(variant: str, keep: Path) -> None:
    """Drop this variant's roots unused for a day (each is hundreds of MB; worktrees of other branches use
    theirs meanwhile), and the leftovers of builds killed long ago."""
    os.utime(keep)
    for old in cache_dir().glob(f"{variant}-*"):
        if old != keep and old.is_dir() and time.time() - old.stat().st_mtime > 24 * 3600:
            shutil.rmtree(old, ignore_errors=True)
    for dead in cache_dir().glob(".building-*"):
        if time.time() - dead.stat().st_mtime > 6 * 3600:  # a build this old was killed; a live one is newer
            shutil.rmtree(dead, ignore_errors=True)
