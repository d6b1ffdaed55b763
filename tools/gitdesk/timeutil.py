"""UTC timestamps as gitdesk writes them: second precision, ``Z`` suffix."""

from __future__ import annotations

import datetime as dt
import os

UTC = dt.timezone.utc


def now() -> dt.datetime:
    """The current time; GITDESK_NOW (ISO 8601) fixes it for tests and imports."""
    fixed = os.environ.get("GITDESK_NOW")
    if fixed:
        return parse_time(fixed)
    return dt.datetime.now(UTC).replace(microsecond=0)


def parse_time(value: object) -> dt.datetime:
    """A datetime from YAML or text; naive times are taken as UTC. Raises ValueError."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        moment = dt.datetime.fromisoformat(text)
    else:
        raise ValueError(f"not a date: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def iso(moment: dt.datetime | dt.date | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, dt.datetime):
        return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    return moment.isoformat()


def stamp(moment: dt.datetime) -> str:
    """Compact form for file names: 20261203T180659Z."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def from_stamp(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
