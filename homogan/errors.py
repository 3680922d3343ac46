"""Errors a user can act on.

Anything raised as a :class:`UserError` is reported by the command line as one line on stderr and
exit code 2, with no traceback: it means "your input is wrong, here is what is allowed", never
"the program is broken".
"""


class UserError(Exception):
    """Bad input: a config value, a data file, a command-line argument. Exit code 2."""


class ConfigError(UserError):
    """A config key or value is invalid. The message names the key, the value and what is allowed."""


class DataError(UserError):
    """A dataset on disk is missing or malformed. The message names the file and what is wrong."""
