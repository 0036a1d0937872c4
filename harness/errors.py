"""The one exception type the CLI turns into a single line and a non-zero exit."""


class HarnessError(Exception):
    """A problem with the user's input or environment, with a message that says what to do.

    Raised instead of letting a library traceback escape: the CLI prints `harness: error: <message>`
    and exits with status 2. Programming errors stay ordinary exceptions, so they still show a traceback.
    """


def first_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first line of an exception's message (its type name when it has none), for a one-line error.

    Library errors (TF, TFLite, Pillow, tarfile) often carry pages of detail; a HarnessError quotes one
    line. `with_type` prefixes the type (`OSError: ...`) where the message alone is too terse to place.
    """
    text = str(exc).strip()
    if not text:
        return exc.__class__.__name__
    line = text.splitlines()[0]
    return f"{exc.__class__.__name__}: {line}" if with_type else line


# What to do about a write or read that the operating system refused, by errno name.
_OS_ADVICE = {
    "ENOSPC": "no space left on the device; free some or write elsewhere",
    "EDQUOT": "disk quota exceeded; free some or write elsewhere",
    "EROFS": "the file system is read-only; write elsewhere",
    "EACCES": "permission denied; choose a place you may write, or fix its permissions",
    "EPERM": "operation not permitted; choose a place you may write",
    "ENOTDIR": "a file stands where a folder is wanted; choose another path",
    "EISDIR": "a folder stands where a file is wanted; give a file name",
    "ENOENT": "no such file or folder",
    "EMFILE": "too many open files; raise the limit (ulimit -n)",
    "EIO": "input/output error from the device; check the disk",
}


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the path, what went wrong and what to do (no traceback)."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    advice = _OS_ADVICE.get(name, exc.strerror or first_line(exc))
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{advice}"
