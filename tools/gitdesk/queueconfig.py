"""The ``queue:`` and ``sla:`` blocks of gitdesk.yml: the order of work and the SLA targets, validated."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidDocument

if TYPE_CHECKING:
    from .config import Schema

ORDER_KEYS = ("priority", "sla", "due", "age", "updated", "id")
TARGETS = ("response", "resolve")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(r"(?:\s*\d+\s*[wdhms])+\s*")
_PART_RE = re.compile(r"(\d+)\s*([wdhms])")
_CLOCK_RE = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def parse_duration(value: Any) -> int:
    """'30m', '4h', '2d', '1h 30m' -> seconds (w, d, h, m, s; a day is 24 hours). Raises ValueError."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(f"{value!r} is not a duration (use a number and a unit: 30m, 4h, 2d, 1h 30m)")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART_RE.findall(text))
    if seconds <= 0:
        raise ValueError(f"{value!r} is not a duration longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """Seconds as people read them: '45s', '20m', '2h 10m', '3d 4h' (the two largest units)."""
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds, 86400)
    parts = [(days, "d"), (rest // 3600, "h"), (rest % 3600 // 60, "m")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    shown = [f"{n}{unit}" for n, unit in parts[first:first + 2] if n]
    return " ".join(shown)


@dataclass(frozen=True)
class QueueSettings:
    """How the queue is ordered, what ``issue take`` sets, and what waits on the customer."""

    order: tuple[str, ...] = ("priority", "sla", "age")
    working_status: str = "open"
    waiting_statuses: tuple[str, ...] = ("waiting",)


@dataclass(frozen=True)
class Targets:
    """SLA targets in seconds; None: no target."""

    response: int | None = None
    resolve: int | None = None


@dataclass(frozen=True)
class BusinessHours:
    days: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time
    tz: str = "UTC"


@dataclass(frozen=True)
class SlaSettings:
    """The SLA targets of every type and priority (per-type overrides already applied)."""

    targets: dict[str, dict[str, Targets]] = field(default_factory=dict)  # type -> priority -> Targets
    hours: BusinessHours | None = None

    def targets_for(self, issue_type: str, priority: str) -> Targets | None:
        found = self.targets.get(issue_type, {}).get(priority)
        return found if found and (found.response or found.resolve) else None


def parse_queue(raw: Any, schema: "Schema", path: str, line: int | None = None) -> QueueSettings:
    """Validate the queue block; every problem names the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidDocument(path, "queue must be a mapping", line)

    def fail(key: str, why: str) -> InvalidDocument:
        return InvalidDocument(path, f"queue.{key}: {why}", line)

    open_statuses = [s for s in schema.statuses if not schema.is_closed(s)]
    for key in raw:
        if key not in QueueSettings.__dataclass_fields__:
            raise fail(key, f"unknown setting (expected one of: {', '.join(QueueSettings.__dataclass_fields__)})")
    order = raw.get("order", list(QueueSettings.order))
    if not isinstance(order, list) or not order:
        raise fail("order", f"must be a list of: {', '.join(ORDER_KEYS)}")
    for key in order:
        if key not in ORDER_KEYS:
            raise fail("order", f"{key!r} is not one of {', '.join(ORDER_KEYS)}")
    if len(set(order)) != len(order):
        raise fail("order", "names a key twice")
    default_waiting = ["waiting"] if "waiting" in open_statuses else []
    waiting = raw.get("waiting_statuses", default_waiting)
    if waiting is None:
        waiting = []
    if not isinstance(waiting, list):
        raise fail("waiting_statuses", "must be a list of statuses")
    for status in waiting:
        if status not in open_statuses:
            raise fail("waiting_statuses", f"{status!r} is not an open status of the schema "
                                           f"({', '.join(open_statuses)})")
    working_choices = [s for s in open_statuses if s not in waiting]
    fallback = schema.reopen_status if schema.reopen_status in working_choices else None
    working = raw.get("working_status", fallback or (working_choices or [None])[0])
    if working not in working_choices:
        raise fail("working_status", f"{working!r} is not one of {', '.join(working_choices) or 'no status'}"
                                     " (an open status that does not wait on the customer)")
    return QueueSettings(tuple(order), working, tuple(waiting))


def parse_sla(raw: Any, schema: "Schema", path: str, line: int | None = None) -> SlaSettings:
    """Validate the sla block: targets per priority, ``types`` overrides, ``hours``."""
    if raw is None:
        return SlaSettings()
    if not isinstance(raw, dict):
        raise InvalidDocument(path, "sla must be a mapping", line)

    def fail(key: str, why: str) -> InvalidDocument:
        return InvalidDocument(path, f"sla.{key}: {why}", line)

    def targets(key: str, spec: Any, base: Targets) -> Targets:
        if not isinstance(spec, dict):
            raise fail(key, "must be a mapping like {response: 1h, resolve: 4h}")
        values = {"response": base.response, "resolve": base.resolve}
        for name, value in spec.items():
            if name not in TARGETS:
                raise fail(f"{key}.{name}", "unknown target (expected response or resolve)")
            try:
                values[name] = None if value in (None, "none") else parse_duration(value)
            except ValueError as err:
                raise fail(f"{key}.{name}", str(err)) from None
        return Targets(**values)

    base: dict[str, Targets] = {}
    for key, spec in raw.items():
        if key in ("types", "hours"):
            continue
        if key not in schema.priorities:
            raise fail(str(key), f"not a priority of the schema ({', '.join(schema.priorities)}), "
                                 "'types' or 'hours'")
        base[key] = targets(key, spec, Targets())
    table = {t: dict(base) for t in schema.types}
    overrides = raw.get("types") or {}
    if not isinstance(overrides, dict):
        raise fail("types", "must map types to {priority: {response: .., resolve: ..}}")
    for type_name, spec in overrides.items():
        if type_name not in schema.types:
            raise fail(f"types.{type_name}", f"not a type of the schema ({', '.join(schema.types)})")
        if spec in (None, "none"):
            table[type_name] = {}
            continue
        if not isinstance(spec, dict):
            raise fail(f"types.{type_name}", "must map priorities to {response: .., resolve: ..}, or be none")
        for prio, prio_spec in spec.items():
            if prio not in schema.priorities:
                raise fail(f"types.{type_name}.{prio}",
                           f"not a priority of the schema ({', '.join(schema.priorities)})")
            table[type_name][prio] = targets(f"types.{type_name}.{prio}", prio_spec,
                                             base.get(prio, Targets()))
    hours = None if raw.get("hours") is None else _parse_hours(raw["hours"], fail)
    return SlaSettings(table, hours)


def _parse_hours(raw: Any, fail) -> BusinessHours:
    if not isinstance(raw, dict):
        raise fail("hours", 'must be a mapping like {days: mon-fri, start: "09:00", end: "17:00", tz: UTC}')
    for key in raw:
        if key not in ("days", "start", "end", "tz"):
            raise fail(f"hours.{key}", "unknown setting (expected days, start, end, tz)")
    days = _parse_days(raw.get("days", "mon-fri"))
    if days is None:
        raise fail("hours.days", f"{raw.get('days')!r} is not a list of days like mon-fri or [mon, wed, fri]")
    times = {}
    for key, default in (("start", "09:00"), ("end", "17:00")):
        value = raw.get(key, default)
        match = _CLOCK_RE.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match:
            raise fail(f"hours.{key}", f'{value!r} is not a time of day in quotes, like "09:00"')
        times[key] = dt.time(int(match.group(1)), int(match.group(2)))
    if times["end"] <= times["start"]:
        raise fail("hours.end", "must be later than hours.start (the same day)")
    tz = raw.get("tz", "UTC")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(str(tz))
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise fail("hours.tz", f"{tz!r} is not a time zone (e.g. UTC, Europe/Berlin)") from None
    return BusinessHours(days, times["start"], times["end"], str(tz))


def _parse_days(value: Any) -> frozenset[int] | None:
    """'mon-fri', 'mon,wed,fri', [mon, tue] -> weekday numbers; None when not understood."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        return None
    days: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            return None
        first, _, last = item.strip().lower().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            return None
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(days)
