"""The error every check raises for a value that cannot work (a command prints it as one line)."""


class ConfigError(ValueError):
    """A config value that cannot work; the message says which key and how to fix it."""
