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
