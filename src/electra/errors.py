"""User-facing errors: raised for bad input, printed by the CLI as one line, exit code 2."""


class UserError(Exception):
    """A problem with what the user gave us (a path, a file, a config key), not a bug.

    The CLI prints ``error: <message>`` without a traceback and exits with code 2.
    """


def warn(message: str) -> None:
    """A choice made for the user that they should know about: one ``warning:`` line on stderr."""
    import sys

    print(f"warning: {message}", file=sys.stderr)
