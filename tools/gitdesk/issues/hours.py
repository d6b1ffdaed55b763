"""Counting SLA time: seconds between two moments, inside business hours when gitdesk.yml sets them.

Without ``sla.hours`` every second counts. With it, only seconds inside the working window
of a working day count, the window read in the configured time zone (so a day of a
daylight-saving change is as long as the clock on the wall says).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from ..queueconfig import BusinessHours

UTC = dt.timezone.utc
_ONE_DAY = dt.timedelta(days=1)


@lru_cache(maxsize=8)
def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _window(hours: BusinessHours, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
    """The working window of a local day, in UTC; None on a day off."""
    if day.weekday() not in hours.days:
        return None
    zone = _zone(hours.tz)
    return (dt.datetime.combine(day, hours.start, zone).astimezone(UTC),
            dt.datetime.combine(day, hours.end, zone).astimezone(UTC))


def _week_seconds(hours: BusinessHours) -> int:
    day = (dt.datetime.combine(dt.date(2000, 1, 3), hours.end)
           - dt.datetime.combine(dt.date(2000, 1, 3), hours.start))
    return int(day.total_seconds()) * len(hours.days)


def _local_day(hours: BusinessHours, moment: dt.datetime) -> dt.date:
    return moment.astimezone(_zone(hours.tz)).date()


def counted(hours: BusinessHours | None, start: dt.datetime, end: dt.datetime) -> int:
    """Whole seconds of SLA time from ``start`` to ``end`` (0 if ``end`` is not later)."""
    if end <= start:
        return 0
    if hours is None:
        return int((end - start).total_seconds())
    day, last = _local_day(hours, start), _local_day(hours, end)
    total = 0
    while day <= last:
        whole_weeks = ((last - day).days - 1) // 7
        if day > _local_day(hours, start) and whole_weeks > 0:  # days wholly inside: arithmetic
            total += whole_weeks * _week_seconds(hours)
            day += dt.timedelta(weeks=whole_weeks)
            continue
        window = _window(hours, day)
        if window:
            low, high = max(window[0], start), min(window[1], end)
            if high > low:
                total += int((high - low).total_seconds())
        day += _ONE_DAY
    return total


def shift(hours: BusinessHours | None, moment: dt.datetime, seconds: int) -> dt.datetime:
    """The moment ``seconds`` of SLA time after ``moment`` (before it, when negative)."""
    if hours is None or seconds == 0:
        return moment + dt.timedelta(seconds=seconds)
    forward = seconds > 0
    left = abs(seconds)
    step = _ONE_DAY if forward else -_ONE_DAY
    day = _local_day(hours, moment)
    week = _week_seconds(hours)
    first = True
    while True:
        if not first and left > week:  # whole weeks from a day boundary
            weeks = (left - 1) // week
            left -= weeks * week
            day += step * 7 * weeks
        first = False
        window = _window(hours, day)
        if window:
            low, high = (max(window[0], moment), window[1]) if forward else (window[0], min(window[1], moment))
            span = int((high - low).total_seconds())
            if span > 0:
                if left <= span:
                    return low + dt.timedelta(seconds=left) if forward else high - dt.timedelta(seconds=left)
                left -= span
        day += step
