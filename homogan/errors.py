"""Errors a user can act on.

Anything raised as a :class:`UserError` is reported by the command line as one line on stderr and
exit code 2, with no traceback: it means "your input is wrong, here is what is allowed", never
"the program is broken". A :class:`WriteError` (a full disk, an I/O error, a read-only file system)
stops training at once with one line and exit code 4.
"""

import errno

#: The write failures that are the machine's, not the program's: reported in one line, exit code 4.
WRITE_ERRNOS = (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT, errno.EFBIG)


class UserError(Exception):
    """Bad input: a config value, a data file, a command-line argument. Exit code 2."""


class ConfigError(UserError):
    """A config key or value is invalid. The message names the key, the value and what is allowed."""


class DataError(UserError):
    """A dataset on disk is missing or malformed. The message names the file and what is wrong."""


class WriteError(Exception):
    """A file could not be written (``path``, ``reason``): training stops at once, nothing half-written stays."""

    def __init__(self, path, reason: str):
        super().__init__(f"could not write {path}: {reason}")
        self.path, self.reason = path, reason
