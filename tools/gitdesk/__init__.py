"""gitdesk: a help desk, issue tracker and knowledge base whose database is a git repository.

The public Python API (what the CLI, the mail gateway and the site are built on)::

    from gitdesk import Tracker
    tracker = Tracker("/path/to/tracker")
    issue = tracker.issues.load(42, comments=True)
"""

from .app import Tracker
from .errors import Conflict, GitdeskError, InvalidDocument, InvalidValue, LockTimeout, NotFound
from .issues.model import Comment, Issue
from .kb.model import Article

__version__ = "0.1.0"

__all__ = [
    "Tracker", "Issue", "Comment", "Article", "GitdeskError", "NotFound", "InvalidDocument",
    "InvalidValue", "Conflict", "LockTimeout", "__version__",
]
