"""The one exception type the CLI turns into a single line and a non-zero exit."""


class HarnessError(Exception):
    """A problem with the user's input or environment, with a message that says what to do.

    Raised instead of letting a library traceback escape: the CLI prints `harness: error: <message>`
    and exits with status 2. Programming errors stay ordinary exceptions, so they still show a traceback.
    """
