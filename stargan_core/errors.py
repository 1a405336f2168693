"""Exceptions that the `stargan` command reports as one line and a non-zero exit status."""


class StarGANError(Exception):
    """An error caused by user input: the message names the value and the fix."""


class ConfigError(StarGANError, ValueError):
    """An invalid params file, override or setting."""


class DataError(StarGANError, ValueError):
    """Missing, malformed or inconsistent input data."""


class CheckpointError(StarGANError, ValueError):
    """A checkpoint that is missing, unreadable or does not match the request."""


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message, or its type name when the message is empty."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
