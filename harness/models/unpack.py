"""Safe unpacking of downloaded archives: a tar (any compression) or zip is unpacked only when no member
could land outside the target folder.

Split from harness.models.fetch, which downloads and verifies; this module only reads archives on disk.
"""

from __future__ import annotations

import posixpath
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from harness.errors import HarnessError, first_line


def safe_extract(archive: Path, dest: Path, label: str | None = None) -> None:
    """Unpack a tar (any compression) or zip archive into `dest`, refusing it whole if any member would
    land outside: an absolute path, a `..` step, a link whose target leaves `dest`, a device or fifo."""
    label = label or archive.name
    extract = _extract_zip if zipfile.is_zipfile(archive) else _extract_tar
    try:
        extract(archive, dest, label)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        with open(archive, "rb") as f:
            head = f.read(16)
        raise HarnessError(f"{label}: the downloaded file is not a readable tar or zip archive "
                           f"({first_line(exc).rstrip(':')}; it begins {head!r})") from None


def _refuse(name: str, label: str, why: str) -> HarnessError:
    return HarnessError(f"refusing archive member {name!r} in {label}: {why}")


def _check_name(name: str, label: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (p.parts and p.parts[0].endswith(":")):
        raise _refuse(name, label, "absolute path")
    if ".." in p.parts:
        raise _refuse(name, label, "'..' leaves the target folder")


def _check_link(name: str, target: str, label: str, relative_to_member: bool) -> None:
    """A symlink's target is relative to the member's folder, a hard link's to the archive root."""
    if PurePosixPath(target).is_absolute():
        raise _refuse(name, label, f"link to the absolute path {target!r}")
    base = posixpath.dirname(name) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise _refuse(name, label, f"link to {target!r} leaves the target folder")


def _extract_tar(archive: Path, dest: Path, label: str) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for m in tar.getmembers():
            _check_name(m.name, label)
            if m.issym():
                _check_link(m.name, m.linkname, label, relative_to_member=True)
            elif m.islnk():
                _check_link(m.name, m.linkname, label, relative_to_member=False)
            elif not (m.isfile() or m.isdir()):
                raise _refuse(m.name, label, "device or fifo")
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):  # the standard library's own checks, where it has them
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)


def _extract_zip(archive: Path, dest: Path, label: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_name(info.filename, label)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _refuse(info.filename, label, "symbolic links in zip archives are not unpacked")
        dest.mkdir(parents=True, exist_ok=True)
        zf.extractall(dest)
