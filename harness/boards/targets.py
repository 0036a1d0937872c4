"""Where `--on TARGET` runs: a spec parsed by a registry of schemes into a target that yields an SSH address.

    ssh://[USER@]HOST[:PORT][?python=PATH]   a board reached over SSH (PATH: its Python, default python3)
    labgrid:PLACE[?python=PATH]              a labgrid place: acquired, reached over SSH, released after

A target is opened as a context manager (`with target.reach() as address:`) because a board farm lends a
board only for the run; a plain SSH board has nothing to acquire.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from harness.errors import HarnessError

DEFAULT_PYTHON = "python3"
SPEC_HELP = "ssh://[USER@]HOST[:PORT][?python=PATH] or labgrid:PLACE[?python=PATH]"


@dataclass(frozen=True)
class SshAddress:
    """How to reach a board's shell and which Python runs the bundle there."""

    host: str
    user: str | None = None
    port: int | None = None
    python: str = DEFAULT_PYTHON

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def label(self) -> str:
        """user@host[:port], as a person names the board."""
        return self.destination + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class Target:
    spec: str  # as given
    reach: Callable[[], AbstractContextManager[SshAddress]]

    @property
    def slug(self) -> str:
        """The spec made safe for a file name (one --json or output file per board)."""
        body = re.sub(r"^[a-z]+:(//)?", "", self.spec.split("?")[0])
        return re.sub(r"[^A-Za-z0-9@._-]+", "_", body).strip("_") or "board"


def _query_python(spec: str, query: str) -> str:
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"python"})
    if unknown:
        raise HarnessError(f"--on {spec}: unknown setting {unknown[0]!r}; the one setting is ?python=PATH")
    python = params.get("python", [DEFAULT_PYTHON])[-1]
    if not python:
        raise HarnessError(f"--on {spec}: ?python= wants the board's Python, e.g. ?python=/opt/venv/bin/python3")
    return python


def _ssh(spec: str) -> Target:
    parts = urllib.parse.urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or parts.path not in ("", "/") or parts.fragment or parts.password:
        raise HarnessError(f"--on {spec}: not an SSH target; write ssh://[USER@]HOST[:PORT][?python=PATH]")
    address = SshAddress(parts.hostname, urllib.parse.unquote(parts.username) if parts.username else None, port,
                         _query_python(spec, parts.query))

    @contextmanager
    def reach() -> Iterator[SshAddress]:
        yield address

    return Target(spec, reach)


def _labgrid(spec: str) -> Target:
    place, _, query = spec.removeprefix("labgrid:").partition("?")
    if not place:
        raise HarnessError(f"--on {spec}: name the place, labgrid:PLACE")
    python = _query_python(spec, query)

    @contextmanager
    def reach() -> Iterator[SshAddress]:
        try:
            from harness.boards.labgrid import reach_place
        except ImportError as exc:
            raise HarnessError(f"--on {spec}: this harness has no labgrid support ({exc})") from None
        with reach_place(place) as found:
            yield SshAddress(found.host, found.user, found.port, python)

    return Target(spec, reach)


# Scheme -> parser; the scheme is what precedes ':' in the spec.
SCHEMES: dict[str, Callable[[str], Target]] = {"ssh": _ssh, "labgrid": _labgrid}


def parse_target(spec: str) -> Target:
    """A --on spec as a target; a spec of no known scheme is one line naming the known ones."""
    scheme, sep, _ = spec.partition(":")
    parser = SCHEMES.get(scheme) if sep else None
    if parser is None:
        raise HarnessError(f"--on {spec!r}: unknown target; write {SPEC_HELP}")
    return parser(spec)


def parse_targets(specs: list[str]) -> list[Target]:
    """Several --on: each parsed, none twice (two runs on one board would time each other)."""
    targets = [parse_target(s) for s in specs]
    slugs = [t.slug for t in targets]
    dup = next((s for s in slugs if slugs.count(s) > 1), None)
    if dup:
        raise HarnessError(f"--on names the board {dup} twice; give each board once")
    return targets
