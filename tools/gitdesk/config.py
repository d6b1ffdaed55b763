"""gitdesk.yml: the tracker's settings and schema, read and validated in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidDocument
from .queueconfig import QueueSettings, SlaSettings, parse_queue, parse_sla

SETTINGS_FILE = "gitdesk.yml"

DEFAULT_SETTINGS = """\
# gitdesk settings and schema. The manual's "Settings" article explains every key.
name: {name}
site_url: {site_url}

mail:
  address: support@desk.example.com    # the address customers write to
  from: {mail_from}
  smtp_host: 127.0.0.1                 # where the outbox is delivered
  smtp_port: 25

# People who work the desk. role: admin, staff or junior.
staff: []
#  - {{name: Alice Admin, email: alice@example.com, role: admin}}

schema:
  # Each type may set its default visibility (public or private).
  types:
    ticket: {{visibility: private}}
    bug: {{visibility: public}}
    feature: {{visibility: public}}
    task: {{visibility: private}}
  default_type: {default_type}
  # Statuses in their usual order; closed: true marks the ones that end the work.
  statuses:
    new: {{}}
    open: {{}}
    waiting: {{}}
    resolved: {{closed: true}}
    closed: {{closed: true}}
  default_status: new
  close_status: closed
  reopen_status: open
  priorities: [critical, high, normal, low]     # most urgent first
  default_priority: normal
  resolutions: [fixed, answered, duplicate, wontfix, invalid]
  # Extra fields: name: {{values: [..], default: .., required: false}}
  fields: {{}}

# The work queue and SLA targets (the manual's "The queue and SLAs"). The defaults:
# queue:
#   order: [priority, sla, age]
#   working_status: open
#   waiting_statuses: [waiting]
# No SLA unless you set targets, for example:
# sla:
#   critical: {{response: 1h, resolve: 4h}}
#   high: {{response: 4h, resolve: 1d}}
#   normal: {{response: 1d, resolve: 5d}}
"""

STANDARD_FIELDS = (
    "title", "type", "status", "priority", "visibility", "labels", "customer", "cc",
    "assignee", "created", "updated", "due", "kb", "resolution", "attachments", "source",
    "author", "closed", "waiting_since", "paused_seconds",
)
VISIBILITIES = ("public", "private")


@dataclass(frozen=True)
class CustomField:
    name: str
    values: tuple[str, ...] = ()
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class StaffMember:
    name: str
    email: str
    role: str = "staff"


@dataclass(frozen=True)
class Schema:
    types: dict[str, dict[str, Any]]
    default_type: str
    statuses: tuple[str, ...]
    closed_statuses: frozenset[str]
    default_status: str
    close_status: str
    reopen_status: str
    priorities: tuple[str, ...]
    default_priority: str
    resolutions: tuple[str, ...]
    fields: dict[str, CustomField]

    def default_visibility(self, issue_type: str) -> str:
        vis = self.types.get(issue_type, {}).get("visibility", "private")
        return vis if vis in VISIBILITIES else "private"

    def is_closed(self, status: str) -> bool:
        return status in self.closed_statuses

    def priority_rank(self, priority: str) -> int:
        return self.priorities.index(priority) if priority in self.priorities else len(self.priorities)


@dataclass(frozen=True)
class MailSettings:
    """The ``mail:`` block: how the desk receives and sends email (the manual's Mail article)."""

    address: str = "support@desk.example.com"
    sender: str = ""                 # the From of outgoing mail ('from' in the file)
    aliases: tuple[str, ...] = ()    # other addresses that reach the desk
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""              # the password is a secret: GITDESK_SMTP_PASSWORD
    smtp_tls: str = "none"           # none, starttls or ssl
    max_bytes: int = 25 * 1024 * 1024
    ticket_type: str = "ticket"
    reopen: dict[str, str] = field(default_factory=lambda: {
        "waiting": "open", "resolved": "open", "closed": "open"})
    notify_staff: str = "all"        # all, assignee (all when unassigned) or none
    acknowledge: bool = True
    cc_from_headers: bool = False
    staff_replies: str = "public"    # a staff member's mail to a ticket: public reply or internal
    public_issue_replies: str = "internal"  # a participant's mail to a public issue: internal or public
    retry_hours: float = 48.0
    wait_for_push: bool = True       # in a shared clone, mail waits until its change is pushed
    send_from: str = "every-clone"   # or mailer: only the clone marked gitdesk.mailer sends, for all

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0].lower()


_MAIL_CHOICES = {"smtp_tls": ("none", "starttls", "ssl"), "send_from": ("every-clone", "mailer"), "notify_staff": ("all", "assignee", "none"),
                 "staff_replies": ("public", "internal"), "public_issue_replies": ("internal", "public")}


def parse_mail(raw: Any, schema: "Schema", path: str, line: int | None) -> MailSettings:
    """Validate the mail block; every problem names the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidDocument(path, "mail must be a mapping", line)

    def fail(key: str, why: str) -> InvalidDocument:
        return InvalidDocument(path, f"mail.{key}: {why}", line)

    statuses = schema.statuses
    values: dict[str, Any] = {"reopen": {s: schema.reopen_status for s in ("waiting", "resolved", "closed")
                                         if s in statuses and s != schema.reopen_status}}
    defaults = MailSettings()
    for key, value in raw.items():
        name = "sender" if key == "from" else key
        if name not in MailSettings.__dataclass_fields__ or name == "sender" and key != "from":
            raise fail(key, "unknown setting")
        default = getattr(defaults, name)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise fail(key, "must be true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise fail(key, "must be a positive number")
            value = type(default)(value)
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
                raise fail(key, "must be a list of email addresses")
            value = tuple(v.strip().lower() for v in value)
        elif isinstance(default, dict):
            if not isinstance(value, dict) or not all(k in statuses and v in statuses
                                                      for k, v in value.items()):
                raise fail(key, f"must map statuses to statuses ({', '.join(statuses)})")
        elif not isinstance(value, str):
            raise fail(key, "must be text")
        if key in _MAIL_CHOICES and value not in _MAIL_CHOICES[key]:
            raise fail(key, f"{value!r} is not one of {', '.join(_MAIL_CHOICES[key])}")
        values[name] = value
    mail = MailSettings(**values)
    if mail.address.count("@") != 1 or not mail.local_part or "." not in mail.domain:
        raise fail("address", f"{mail.address!r} is not an email address")
    if "+" in mail.local_part:
        raise fail("address", "must not contain '+' (reply addresses add +ticket.token to it)")
    if mail.ticket_type not in schema.types:
        raise fail("ticket_type", f"{mail.ticket_type!r} is not a type of the schema")
    return mail


SAME_FIELD = ("later", "earlier", "ask")


@dataclass(frozen=True)
class SyncSettings:
    """The ``sync:`` block: how ``gitdesk sync`` settles a field both clones changed."""

    same_field: str = "later"   # later: the later sync wins; earlier: the shared value stays; ask


def parse_sync(raw: Any, path: str, line: int | None) -> SyncSettings:
    if raw is None:
        return SyncSettings()
    if not isinstance(raw, dict):
        raise InvalidDocument(path, "sync must be a mapping", line)
    for key, value in raw.items():
        if key != "same_field":
            raise InvalidDocument(path, f"sync.{key}: unknown setting (expected: same_field)", line)
        if value not in SAME_FIELD:
            raise InvalidDocument(path, f"sync.same_field: {value!r} is not one of {', '.join(SAME_FIELD)}",
                                  line)
    return SyncSettings(**raw)


@dataclass(frozen=True)
class Settings:
    name: str
    site_url: str
    mail: MailSettings
    staff: tuple[StaffMember, ...]
    schema: Schema
    raw: dict[str, Any] = field(compare=False, repr=False, default_factory=dict)
    queue: QueueSettings = QueueSettings()
    sla: SlaSettings = SlaSettings()
    sync: SyncSettings = SyncSettings()

    def find_staff(self, who: str) -> StaffMember | None:
        """A staff member by email, name or email local part (case-insensitive)."""
        key = who.strip().lower()
        for member in self.staff:
            if key in (member.email.lower(), member.name.lower(), member.email.lower().split("@")[0]):
                return member
        return None


def _names(value: Any, key: str, path: str, lines: dict[str, int]) -> tuple[str, ...]:
    if isinstance(value, dict):
        value = list(value)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidDocument(path, f"{key} must be a non-empty list of names", lines.get("schema"))
    return tuple(value)


def parse_settings(data: dict[str, Any], path: str = SETTINGS_FILE,
                   lines: dict[str, int] | None = None) -> Settings:
    """Validate a loaded gitdesk.yml; every problem names the file."""
    lines = lines or {}
    raw_schema = data.get("schema") or {}
    if not isinstance(raw_schema, dict):
        raise InvalidDocument(path, "schema must be a mapping", lines.get("schema"))

    def pick(key: str, choices: tuple[str, ...], fallback: str) -> str:
        value = raw_schema.get(key, fallback)
        if value not in choices:
            raise InvalidDocument(path, f"schema.{key}: {value!r} is not one of {', '.join(choices)}",
                                  lines.get("schema"))
        return value

    raw_types = raw_schema.get("types") or {"ticket": {}, "bug": {}, "feature": {}, "task": {}}
    types_list = _names(raw_types, "schema.types", path, lines)
    types = {t: dict(raw_types[t] or {}) if isinstance(raw_types, dict) else {} for t in types_list}
    raw_statuses = raw_schema.get("statuses") or {
        "new": {}, "open": {}, "waiting": {}, "resolved": {"closed": True}, "closed": {"closed": True}}
    statuses = _names(raw_statuses, "schema.statuses", path, lines)
    closed = frozenset(s for s in statuses
                       if isinstance(raw_statuses, dict) and (raw_statuses[s] or {}).get("closed"))
    if not closed:
        raise InvalidDocument(path, "schema.statuses: mark at least one status closed: true",
                              lines.get("schema"))
    priorities = _names(raw_schema.get("priorities") or ["critical", "high", "normal", "low"],
                        "schema.priorities", path, lines)
    resolutions = tuple(raw_schema.get("resolutions") or ())
    fields = {}
    for name, spec in (raw_schema.get("fields") or {}).items():
        spec = spec or {}
        if name in STANDARD_FIELDS:
            raise InvalidDocument(path, f"schema.fields: {name!r} is a standard field", lines.get("schema"))
        fields[name] = CustomField(name, tuple(str(v) for v in spec.get("values") or ()), spec.get("default"),
                                   bool(spec.get("required")))
    schema = Schema(
        types=types,
        default_type=pick("default_type", types_list, types_list[0]),
        statuses=statuses,
        closed_statuses=closed,
        default_status=pick("default_status", statuses, statuses[0]),
        close_status=pick("close_status", statuses, sorted(closed, key=statuses.index)[-1]),
        reopen_status=pick("reopen_status", statuses, statuses[min(1, len(statuses) - 1)]),
        priorities=priorities,
        default_priority=pick("default_priority", priorities, priorities[len(priorities) // 2]),
        resolutions=resolutions,
        fields=fields,
    )
    staff = []
    for entry in data.get("staff") or []:
        if not isinstance(entry, dict) or not entry.get("email"):
            raise InvalidDocument(path, "staff: each entry needs at least an email", lines.get("staff"))
        staff.append(StaffMember(str(entry.get("name") or entry["email"]), str(entry["email"]),
                                 str(entry.get("role") or "staff")))
    return Settings(
        name=str(data.get("name") or "gitdesk"),
        site_url=str(data.get("site_url") or ""),
        mail=parse_mail(data.get("mail"), schema, path, lines.get("mail")),
        staff=tuple(staff),
        schema=schema,
        raw=data,
        queue=parse_queue(data.get("queue"), schema, path, lines.get("queue")),
        sla=parse_sla(data.get("sla"), schema, path, lines.get("sla")),
        sync=parse_sync(data.get("sync"), path, lines.get("sync")),
    )
