"""The error types of gitdesk; each interface turns them into one line of user text."""

from __future__ import annotations


class GitdeskError(Exception):
    """Base class: a problem the user can act on. ``str(err)`` is the one-line message."""

    exit_code = 1


class NotFound(GitdeskError):
    """An issue, comment, article or tracker that does not exist."""


class TrackerNotFound(NotFound):
    """No gitdesk.yml in this folder or any parent."""


class InvalidDocument(GitdeskError):
    """A file that cannot be read or does not match the schema; names path and line."""

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


class InvalidValue(GitdeskError):
    """A value given on the command line or through the API that the schema refuses."""


class Conflict(GitdeskError):
    """The change would overwrite or lose someone's work (uncommitted edits, a held item)."""


class LockTimeout(GitdeskError):
    """Another gitdesk command held the tracker's lock for too long; try again later."""

    exit_code = 75  # EX_TEMPFAIL: an MTA retries delivery


class Busy(LockTimeout):
    """git is half way through a merge or rebase in this clone: no change until it is done."""


class GitError(GitdeskError):
    """git itself failed; the message carries git's own words."""
