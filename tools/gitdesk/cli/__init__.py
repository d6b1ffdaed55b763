"""The command-line interface: click groups ``issue``, ``kb`` and ``gitdesk``; parse, act, render."""
