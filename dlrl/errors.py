"""The one exception type users see: a single actionable line, never a stack trace from the CLI."""


class DLRLError(Exception):
    """A user-facing error. The CLI prints ``str(err)`` on one line and exits with code 2."""


class ConfigError(DLRLError, ValueError):
    """A recipe or argument is malformed: the message names the key and the valid choices."""
