"""Mail gateway time per message: ``gitdesk mail ingest`` against Roundup's ``roundup-mailgw``.

It generates a realistic set of messages (new tickets from distinct customers, replies to
earlier ones, some with a small attachment) and feeds the same messages to a fresh gitdesk
tracker and a fresh Roundup tracker, in each of two ways:

- pipe: a fresh process per message, the message on standard input, as an MTA delivers it
  (``gitdesk -C DESK mail ingest`` against ``roundup-mailgw TRACKER``);
- batch: one process for an mbox of all the messages (``gitdesk -C DESK mail ingest --mbox
  FILE`` against ``roundup-mailgw -c issue TRACKER mailbox FILE``).

Beside them it times the floors any such gateway stands on: a bare ``python -c pass`` and
one ``git commit`` of one file. Roundup (``roundup==2.6.0``) is installed with pip into its
own venv under benchmarks/work/ (git-ignored), reused when present. Every round starts from
fresh copies of both trackers, alternating which system goes first; after each run it
checks that both stored every message. It prints a Markdown table of the median and
min-max of the per-message time and the ratios, with a "where the time goes" paragraph for
gitdesk, and writes it to benchmarks/results/mail.md.

    .venv/bin/python benchmarks/mail/run.py                          # 200 messages, 3 rounds
    .venv/bin/python benchmarks/mail/run.py --messages 30 --rounds 1 --out /tmp/mail.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.policy
import email.utils
import importlib.metadata
import mailbox
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import unicodedata
from collections import defaultdict
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN = Path(sys.executable).parent
WORK = HERE.parent / "work"                       # git-ignored
RESULTS = HERE.parent / "results" / "mail.md"
ROUNDUP = "2.6.0"
ROUNDUP_VENV = WORK / f"roundup-{ROUNDUP}-venv"
GOAL_PIPE, GOAL_BATCH = 0.5, 1.0
DESK = "support@desk.example.com"
# Byte code is cached as an installed package has it, but under benchmarks/work/ rather than
# beside the sources (a session may run with PYTHONDONTWRITEBYTECODE set).
PYCACHE = WORK / "pycache"
# gitdesk runs from a copy of tools/gitdesk taken when the run starts (first on PYTHONPATH, before
# the editable install), so that edits made meanwhile in the work tree cannot change it mid-run.
SNAPSHOT: Path | None = None
GIT_ID = {"GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
          "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}

# -- the messages ------------------------------------------------------------------------------
FIRST = ["Anna", "Ben", "Carla", "David", "Elif", "Frank", "Greta", "Hiro", "Ines", "Jonas",
         "Karin", "Luis", "Maja", "Nils", "Olga", "Pierre", "Rosa", "Sven", "Tanja", "Umar",
         "Vera", "Wim", "Zoë", "Jürgen", "Søren", "Chloé", "Ana María", "Łukasz"]
LAST = ["Fischer", "Novak", "Schmidt", "Dubois", "Rossi", "Jansen", "Larsen", "Kowalski",
        "Müller", "García", "Nakamura", "Okafor", "Berg", "Costa", "Weber", "Lindqvist"]
COMPANY = ["bakery", "dental", "fitness", "lawfirm", "garage", "florist", "studio", "hotel",
           "tours", "print", "clinic", "roofing", "cafe", "books", "design", "optics"]
THING = ["the website", "our shop", "the contact form", "webmail", "the mailbox info@",
         "the database", "the SSL certificate", "the DNS zone", "the nightly backup",
         "the control panel", "FTP access", "the staging site", "our newsletter",
         "the PHP version", "the cron job", "the redirect from www"]
PROBLEM = ["is down since this morning", "shows a 500 error", "is very slow", "stopped working",
           "rejects our password", "sends mail that lands in spam", "expired yesterday",
           "does not resolve", "failed twice this week", "is over quota",
           "times out after the upgrade", "shows a certificate warning"]
SUBJECT = ["{Thing} {problem}", "Problem: {thing} {problem}", "Urgent - {thing} {problem}",
           "Question about {thing}", "{Thing} {problem} again", "Help needed with {thing}"]
SENTENCE = [
    "Since {time} {thing} {problem}.", "We did not change anything on our side.",
    "Our customers called us about it this morning.", "Could you please have a look at {thing}?",
    "I tried again from another computer and from my phone, same result.",
    "The error message says: {error}.", "We need this fixed before {day}, it is our busiest day.",
    "Last month you changed something on {thing}, maybe it is related.",
    "I cleared the browser cache and restarted the router as your guide says.",
    "My colleague says {thing} worked fine until {time}.",
    "Is there a way to see the logs for {thing} in the control panel?",
    "We also would like to know if the backup of {thing} is complete.",
    "Please call me if that is easier, I am in the office until 5 pm.",
    "Do we need to upgrade our plan for this?",
]
FOLLOW = [
    "Thank you for the quick answer.", "It works again now, thanks!",
    "Unfortunately it happened again, at {time}.", "I attached the log you asked for.",
    "I did what you suggested but {thing} still {problem}.",
    "Can you tell me when this will be fixed?", "One more question: {question}",
    "My colleague will be the contact person while I am away.",
]
QUESTION = ["do you also offer a staging copy?", "how long do you keep the backups?",
            "can we get a second mailbox for billing?", "is the new PHP version safe for our shop?"]
ERROR = ["550 5.7.1 Message rejected", "ERR_CONNECTION_TIMED_OUT", "Internal Server Error",
         "Disk quota exceeded", "SSL_ERROR_BAD_CERT_DOMAIN", "Access denied for user 'shop'@'localhost'"]
TIME = ["yesterday evening", "this morning", "about 10:30", "the weekend", "Monday", "the last update"]
DAY = ["Friday", "the weekend", "the end of the month", "Monday morning"]
AGENT = ["Mozilla Thunderbird 128.5", "Microsoft Outlook 16.0", "Apple Mail (2.3826)",
         "Roundcube Webmail/1.6.9", "K-9 Mail for Android"]


def _fill(rng: random.Random, template: str) -> str:
    thing = rng.choice(THING)
    return template.format(thing=thing, Thing=thing[0].upper() + thing[1:],
                           problem=rng.choice(PROBLEM), error=rng.choice(ERROR),
                           time=rng.choice(TIME), day=rng.choice(DAY), question=rng.choice(QUESTION))


def _paragraphs(rng: random.Random, pool: list[str], count: int, per: tuple[int, int]) -> list[str]:
    out = []
    for _ in range(count):
        text = " ".join(_fill(rng, rng.choice(pool)) for _ in range(rng.randint(*per)))
        out.append(textwrap.fill(text, 72))
    return out


def _attachment(rng: random.Random) -> tuple[str, bytes, str, str]:
    """A small file as customers attach them: a log excerpt, a screenshot, a PDF."""
    kind = rng.choice(["log", "log", "png", "pdf"])
    if kind == "log":
        lines = [f"2025-03-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
                 f"{rng.randint(0, 59):02d} {rng.choice(['error', 'warn', 'info'])} "
                 f"{_fill(rng, rng.choice(SENTENCE))}" for _ in range(rng.randint(20, 80))]
        return "error.log", ("\n".join(lines) + "\n").encode(), "text", "plain"
    size = rng.randint(6_000, 24_000)
    if kind == "png":
        return "screenshot.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(size), "image", "png"
    return "invoice.pdf", b"%PDF-1.4\n" + rng.randbytes(size) + b"\n%%EOF\n", "application", "pdf"


def make_messages(n: int, seed: int = 11) -> list[dict]:
    """About 60% new tickets, each from a new customer, and 40% replies by the customer of an
    earlier ticket (mostly a recent one); about 15% carry an attachment."""
    rng = random.Random(seed * 7919 + n)
    moment = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.timezone.utc)
    tickets: list[dict] = []
    titles: set[str] = set()
    messages: list[dict] = []
    for i in range(n):
        moment += dt.timedelta(minutes=rng.randint(2, 70))
        zone = dt.timezone(dt.timedelta(hours=rng.choice([0, 1, 1, 2, -5])))
        if tickets and rng.random() < 0.42:
            ticket = rng.choice(tickets[-15:]) if rng.random() < 0.8 else rng.choice(tickets)
            previous = ticket["thread"][-1]
            parts = ["Hello,"] + _paragraphs(rng, FOLLOW + SENTENCE[:4], rng.randint(1, 3), (1, 3))
            quote = [f"On {email.utils.format_datetime(previous['date'])}, {ticket['name']} wrote:"]
            quote += ["> " + line if line else ">" for line in previous["body"].splitlines()]
            msg = {"kind": "reply", "ticket": ticket["number"], "title": ticket["title"],
                   "parent": previous["id"] if rng.random() < 0.7 else None,
                   "references": [m["id"] for m in ticket["thread"]][-5:]}
            sender = ticket
        else:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            domain = f"{rng.choice(COMPANY)}-{len(tickets) + 1}.example"
            ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
            local = re.sub(r"[^a-z.]", "", ascii_name.decode().lower().replace(" ", "."))
            title = _fill(rng, rng.choice(SUBJECT))
            while title.lower() in titles:  # a repeated subject would be a reply to Roundup
                title = f"{title} ({rng.choice(['www.', 'shop.', 'mail.', ''])}{domain})"
            titles.add(title.lower())
            sender = {"number": len(tickets) + 1, "name": f"{first} {last}",
                      "address": f"{local or 'info'}@{domain}", "title": title, "thread": []}
            tickets.append(sender)
            parts = [rng.choice(["Hello,", "Hi,", "Dear support team,", "Good morning,"])]
            parts += _paragraphs(rng, SENTENCE, rng.randint(2, 4), (2, 4))
            quote = []
            msg = {"kind": "new", "ticket": sender["number"], "title": sender["title"],
                   "parent": None, "references": []}
        company = sender["address"].split("@")[1].split("-")[0].capitalize()
        signature = f"-- \n{sender['name']}\n{company} GmbH\nTel. +49 30 {rng.randint(1000000, 9999999)}"
        body = "\n\n".join([*parts, rng.choice(["Best regards,", "Thanks,", "Kind regards,"]) + "\n"
                            + sender["name"].split()[0], signature])
        date = moment.astimezone(zone)
        message_id = f"<{rng.randbytes(8).hex()}.{i + 1}@mail.{sender['address'].split('@')[1]}>"
        msg.update(id=message_id, date=date, name=sender["name"], address=sender["address"],
                   body=body + ("\n\n" + "\n".join(quote) if quote else "") + "\n",
                   attachment=_attachment(rng) if rng.random() < 0.15 else None,
                   agent=rng.choice(AGENT), relay=rng.randint(2, 250))
        sender["thread"].append({"id": message_id, "date": date, "body": body})
        messages.append(msg)
    return messages


def render(msg: dict, tag: str) -> bytes:
    """One message as an MTA would deliver it; ``tag`` is how the system names a ticket in a
    subject: gitdesk's ``[#7]``, Roundup's ``[issue7]``. Nothing else differs."""
    m = EmailMessage()
    host = "mail." + msg["address"].split("@")[1]
    stamp = email.utils.format_datetime(msg["date"])
    m["Return-Path"] = f"<{msg['address']}>"
    m["Received"] = (f"from {host} ({host} [192.0.2.{msg['relay']}]) by mx.desk.example.com "
                     f"(Postfix) with ESMTPS id {msg['id'][1:11].upper()} for <{DESK}>; {stamp}")
    m["Received"] = f"from [10.0.0.{msg['relay']}] by {host} with ESMTPSA; {stamp}"
    m["From"] = email.utils.formataddr((msg["name"], msg["address"]))
    m["To"] = f"Example Support <{DESK}>"
    subject = msg["title"] if msg["kind"] == "new" else f"Re: {tag.format(msg['ticket'])} {msg['title']}"
    m["Subject"] = subject
    m["Date"] = stamp
    m["Message-ID"] = msg["id"]
    if msg["parent"]:
        m["In-Reply-To"] = msg["parent"]
        m["References"] = " ".join(msg["references"])
    m["User-Agent"] = msg["agent"]
    m.set_content(msg["body"])
    if msg["attachment"]:
        name, data, main, sub = msg["attachment"]
        m.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return m.as_bytes(policy=email.policy.default)


# -- the two trackers ------------------------------------------------------------------------
def child_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "GITDESK_DIR",
                                                            "GITDESK_MAIL_SECRET", "ROUNDUP_INSTANCE")}
    return {**env, "PYTHONPYCACHEPREFIX": str(PYCACHE), **(extra or {})}


def gitdesk_env(extra: dict | None = None) -> dict:
    return {**(extra or {}), **({"PYTHONPATH": str(SNAPSHOT)} if SNAPSHOT else {})}


def snapshot_gitdesk(work: Path) -> str:
    """Copy tools/gitdesk for this run; returns which version it is."""
    global SNAPSHOT
    SNAPSHOT = work / "gitdesk-src"
    shutil.copytree(REPO / "tools" / "gitdesk", SNAPSHOT / "gitdesk",
                    ignore=shutil.ignore_patterns("__pycache__"))
    where = run([sys.executable, "-c", "import gitdesk; print(gitdesk.__file__)"], cwd=work,
                env=gitdesk_env())
    if not Path(where.strip()).is_relative_to(SNAPSHOT):
        raise SystemExit(f"gitdesk is imported from {where.strip()}, not from the copy in {SNAPSHOT}")
    head = run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO).strip()
    dirty = run(["git", "status", "--porcelain", "--", "tools/gitdesk"], cwd=REPO).strip()
    return f"{importlib.metadata.version('gitdesk')} ({head}{' + uncommitted changes' if dirty else ''})"


def run(cmd: list[str], cwd: Path, env: dict | None = None, input: bytes | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, env=child_env(env))
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                         f"{proc.stderr.decode(errors='replace')}{proc.stdout.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace")


def roundup_bin() -> Path:
    """Roundup 2.6.0 in the benchmark's own venv, made (with pip) only if it is not there."""
    bin_dir = ROUNDUP_VENV / "bin"
    check = [str(bin_dir / "python"), "-c", "import roundup; print(roundup.__version__)"]
    if (bin_dir / "roundup-mailgw").exists():
        found = subprocess.run(check, capture_output=True, text=True).stdout.strip()
        if found == ROUNDUP:
            return bin_dir
    print(f"installing roundup=={ROUNDUP} into {ROUNDUP_VENV} ...", file=sys.stderr)
    WORK.mkdir(parents=True, exist_ok=True)
    run([sys.executable, "-m", "venv", "--clear", str(ROUNDUP_VENV)], cwd=WORK)
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", f"roundup=={ROUNDUP}"], cwd=WORK)
    if run(check, cwd=WORK).strip() != ROUNDUP:
        raise SystemExit(f"{ROUNDUP_VENV}: roundup {ROUNDUP} did not install")
    return bin_dir


def make_roundup(home: Path, rbin: Path) -> None:
    """The classic template on the sqlite backend, set up the way a help desk would be: mail
    from unknown senders makes them users (role User) and opens issues; outgoing mail (nosy
    messages, error replies) goes to a file in the tracker instead of any SMTP server."""
    settings = ",".join([
        "mail_domain=desk.example.com", "mail_host=127.0.0.1", "mail_port=9",
        "mail_debug=outgoing-mail.txt",              # relative to the tracker: written, never sent
        "tracker_web=http://127.0.0.1:8917/desk/", "tracker_email=support",
        "new_email_user_roles=User"])
    admin = str(rbin / "roundup-admin")
    run([admin, "-i", str(home), "install", "classic", "sqlite", settings], cwd=home.parent)
    schema = home / "schema.py"
    text = schema.read_text()
    off = "#db.security.addPermissionToRole('Anonymous', 'Email Access')"
    if off not in text:
        raise SystemExit(f"{schema}: cannot find the line that lets unknown senders mail in")
    schema.write_text(text.replace(off, off[1:]))
    config = (home / "config.ini").read_text()
    for key, value in (("debug", "outgoing-mail.txt"), ("host", "127.0.0.1"), ("backend", "sqlite"),
                       ("new_email_user_roles", "User")):
        if not re.search(rf"^{key} = {re.escape(value)}$", config, re.M):
            raise SystemExit(f"{home / 'config.ini'}: {key} is not {value}")
    run([admin, "-i", str(home), "initialise", "bench-admin-pw"], cwd=home)


def make_gitdesk(root: Path) -> None:
    """``gitdesk init`` as it comes; the SMTP port points where nothing listens (ingest only
    queues mail in the outbox, it never sends) and the signing key is made up front."""
    run([str(BIN / "gitdesk"), "init", str(root), "--name", "Bench Desk"], cwd=root.parent, env=gitdesk_env())
    config = root / "gitdesk.yml"
    text = config.read_text()
    if "smtp_port: 25" not in text:
        raise SystemExit(f"{config}: no 'smtp_port: 25' to change")
    config.write_text(text.replace("smtp_port: 25", "smtp_port: 9 "))
    local = root / ".gitdesk"
    local.mkdir(exist_ok=True)
    secret = local / "mail-secret"
    secret.write_text(random.Random(5).randbytes(32).hex() + "\n")
    secret.chmod(0o600)
    run([str(BIN / "gitdesk"), "-C", str(root), "check"], cwd=root, env=gitdesk_env())
    run(["git", "commit", "-q", "-m", "benchmark: SMTP port", "gitdesk.yml"], cwd=root, env=GIT_ID)


def count_gitdesk(root: Path, base: str) -> dict:
    issues = [p for p in (root / "issues").iterdir() if (p / "issue.md").is_file()]
    quarantined = root / ".gitdesk" / "quarantine"
    return {
        "tickets": len(issues),
        "comments": sum(1 for p in issues for f in p.glob("*.md") if f.name != "issue.md"),
        "attachments": sum(1 for p in issues for f in (p / "files").glob("*") if f.is_file()),
        "originals": sum(1 for p in issues for _ in (p / "mail").glob("*.eml")),
        "commits": int(run(["git", "rev-list", "--count", "HEAD", f"^{base}"], cwd=root)),
        "quarantined": sum(1 for f in quarantined.rglob("*") if f.is_file()) if quarantined.is_dir() else 0,
    }


def count_roundup(home: Path, rbin: Path) -> dict:
    def rows(cls: str) -> int:
        out = run([str(rbin / "roundup-admin"), "-i", str(home), "list", cls], cwd=home)
        return sum(1 for line in out.splitlines() if line.strip())

    return {"issues": rows("issue"), "messages": rows("msg"), "files": rows("file"),
            "users": rows("user") - 2}  # admin and anonymous were there before


def check_stored(gd: Path, rt: Path, rbin: Path, messages: list[dict], how: str, base: str) -> None:
    """Both systems stored every message: one ticket per new one, one comment (message) per
    reply, every attachment; fail loudly otherwise."""
    new = sum(m["kind"] == "new" for m in messages)
    files = sum(m["attachment"] is not None for m in messages)
    g, r = count_gitdesk(gd, base), count_roundup(rt, rbin)
    want_g = {"tickets": new, "comments": len(messages) - new, "attachments": files,
              "originals": len(messages), "commits": len(messages), "quarantined": 0}
    want_r = {"issues": new, "messages": len(messages), "files": files, "users": new}
    problems = [f"gitdesk {k}: {g[k]}, expected {v}" for k, v in want_g.items() if g[k] != v]
    problems += [f"Roundup {k}: {r[k]}, expected {v}" for k, v in want_r.items() if r[k] != v]
    if problems:
        raise SystemExit(f"{how}: not every message was stored ({gd}, {rt}):\n  " + "\n  ".join(problems))


# -- timing -----------------------------------------------------------------------------------
def timed(cmd: list[str], cwd: Path, stdin: bytes | None = None,
          env: dict | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, with the children it waited for, such as
    git) and peak RSS (MiB) of one process."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(env),
                                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
        if stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                             f"{out.read().decode(errors='replace')[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def envelope(system: str, msg: dict | None = None) -> dict:
    """What Postfix's pipe passes to a command (roundup-mailgw ignores it); for gitdesk, where
    this run's copy of it is."""
    env = {"SENDER": msg["address"], "ORIGINAL_RECIPIENT": DESK} if msg else {}
    return gitdesk_env(env) if system == "gitdesk" else env


def write_mbox(path: Path, raws: list[bytes]) -> None:
    box = mailbox.mbox(str(path))
    box.lock()
    for raw in raws:
        box.add(raw)
    box.flush()
    box.unlock()
    box.close()


class Round:
    """Fresh copies of both trackers for one round, and the commands that feed them."""

    def __init__(self, folder: Path, templates: dict[str, Path], rbin: Path):
        self.folder, self.rbin = folder, rbin
        folder.mkdir(parents=True)
        self.desk = {}
        for mode in ("pipe", "batch"):
            for system in ("gitdesk", "roundup"):
                self.desk[system, mode] = folder / f"{system}-{mode}"
                shutil.copytree(templates[system], self.desk[system, mode], symlinks=True)

    def pipe(self, system: str) -> list[str]:
        if system == "gitdesk":
            return [str(BIN / "gitdesk"), "-C", str(self.desk["gitdesk", "pipe"]), "mail", "ingest"]
        return [str(self.rbin / "roundup-mailgw"), str(self.desk["roundup", "pipe"])]

    def batch(self, system: str, mbox: Path) -> list[str]:
        copy = self.folder / f"{system}.mbox"   # roundup-mailgw empties the file it has read
        shutil.copyfile(mbox, copy)
        if system == "gitdesk":
            return [str(BIN / "gitdesk"), "-C", str(self.desk["gitdesk", "batch"]), "mail", "ingest",
                    "--mbox", str(copy)]
        return [str(self.rbin / "roundup-mailgw"), "-c", "issue", str(self.desk["roundup", "batch"]),
                "mailbox", str(copy)]


def floors(folder: Path, template: Path, samples: int) -> dict[str, list[float]]:
    """``python -c pass``, and ``git commit`` of one changed file in a repository as big as a
    fresh tracker: what any Python gateway that commits to git costs at least."""
    repo = folder / "floor-repo"
    if not repo.exists():
        shutil.copytree(template, repo, symlinks=True)
        (repo / "floor.txt").write_text("start\n")
        run(["git", "add", "floor.txt"], cwd=repo, env=GIT_ID)
        run(["git", "commit", "-q", "-m", "floor"], cwd=repo, env=GIT_ID)
    out: dict[str, list[float]] = {"python": [], "git": [], "python_cpu": [], "git_cpu": []}
    for k in range(samples):
        wall, cpu, _ = timed([sys.executable, "-c", "pass"], cwd=folder)
        out["python"].append(wall)
        out["python_cpu"].append(cpu)
        (repo / "floor.txt").write_text(f"{k}\n")
        wall, cpu, _ = timed(["git", "commit", "-q", "-m", f"floor {k}", "--", "floor.txt"], cwd=repo,
                             env=GIT_ID)
        out["git"].append(wall)
        out["git_cpu"].append(cpu)
    return out


def measure(n: int, rounds: int, work: Path, rbin: Path) -> dict:
    messages = make_messages(n)
    raws = {"gitdesk": [render(m, "[#{}]") for m in messages],
            "roundup": [render(m, "[issue{}]") for m in messages]}
    for system in raws:
        write_mbox(work / f"{system}.mbox", raws[system])
    templates = {"gitdesk": work / "template-gitdesk", "roundup": work / "template-roundup"}
    make_gitdesk(templates["gitdesk"])
    templates["roundup"].mkdir()
    make_roundup(templates["roundup"], rbin)
    base = run(["git", "rev-parse", "HEAD"], cwd=templates["gitdesk"]).strip()
    # A warm-up, not counted: byte code, the page cache, git's and sqlite's first touches.
    warm = Round(work / "warm-up", templates, rbin)
    for system in ("gitdesk", "roundup"):
        for i in range(min(3, n)):
            timed(warm.pipe(system), warm.folder, raws[system][i], envelope(system, messages[i]))
        write_mbox(warm.folder / f"warm-{system}.mbox", raws[system][3:5])
        timed(warm.batch(system, warm.folder / f"warm-{system}.mbox"), warm.folder, env=envelope(system))
    floors(work, templates["gitdesk"], 3)

    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    new = [m["kind"] == "new" for m in messages]
    for k in range(rounds):
        order = ["gitdesk", "roundup"] if k % 2 == 0 else ["roundup", "gitdesk"]
        r = Round(work / f"round-{k + 1}", templates, rbin)
        t0 = time.perf_counter()
        samples: dict[str, list[tuple[float, float]]] = {s: [] for s in order}
        for i, msg in enumerate(messages):
            for system in order:
                wall, cpu, _ = timed(r.pipe(system), r.folder, raws[system][i], envelope(system, msg))
                samples[system].append((wall, cpu))
        check_stored(r.desk["gitdesk", "pipe"], r.desk["roundup", "pipe"], rbin, messages,
                     f"round {k + 1}, pipe", base)
        for system in order:
            walls = [w for w, _ in samples[system]]
            per["pipe wall"][system].append(sum(walls) / n)
            per["pipe cpu"][system].append(sum(c for _, c in samples[system]) / n)
            per["pipe new"][system].append(statistics.fmean(w for w, y in zip(walls, new, strict=True) if y))
            replies = [w for w, y in zip(walls, new, strict=True) if not y]
            per["pipe reply"][system].append(statistics.fmean(replies) if replies else float("nan"))
        pipe_s = time.perf_counter() - t0
        for system in order:
            wall, cpu, mib = timed(r.batch(system, work / f"{system}.mbox"), r.folder, env=envelope(system))
            per["batch wall"][system].append(wall / n)
            per["batch cpu"][system].append(cpu / n)
            per["batch rss"][system].append(mib)
        check_stored(r.desk["gitdesk", "batch"], r.desk["roundup", "batch"], rbin, messages,
                     f"round {k + 1}, batch", base)
        f = floors(work, templates["gitdesk"], 20)
        for key in f:
            per["floor"][key].append(statistics.fmean(f[key]))
        last = {key: [1000 * per[key][s][-1] for s in ("gitdesk", "roundup")]
                for key in ("pipe wall", "batch wall")}
        print(f"  round {k + 1}: pipe {last['pipe wall'][0]:.0f} vs {last['pipe wall'][1]:.0f} ms/message, "
              f"batch {last['batch wall'][0]:.1f} vs {last['batch wall'][1]:.1f} ms/message "
              f"(gitdesk vs Roundup; {time.perf_counter() - t0:.0f}s, pipe {pipe_s:.0f}s)", file=sys.stderr)
    sizes = [len(x) for x in raws["gitdesk"]]
    return {"n": n, "new": sum(new), "files": sum(m["attachment"] is not None for m in messages),
            "mean_kib": statistics.fmean(sizes) / 1024, "max_kib": max(sizes) / 1024,
            "per": per, "raws": raws, "messages": messages, "templates": templates}


# -- where gitdesk's time goes ----------------------------------------------------------------
_PROBE = r"""
import sys, time
started = time.time()
spawned, profiled, args = float(sys.argv[1]), sys.argv[2] == "profile", sys.argv[3:]
if profiled:
    import cProfile, pstats
loaded = set(sys.modules)                       # what the interpreter (and the probe) brought in
import subprocess
git = [0, 0.0]
_run = subprocess.run


def counted(*a, **k):                           # every git call of gitdesk goes through here
    t = time.perf_counter()
    try:
        return _run(*a, **k)
    finally:
        git[0] += 1
        git[1] += time.perf_counter() - t


subprocess.run = counted
from gitdesk.cli.gitdesk import main
imported = time.time()
sys.argv = ["gitdesk", *args]
if profiled:
    profile = cProfile.Profile()
    profile.enable()
try:
    main()
except SystemExit as stop:
    if stop.code not in (0, None):
        raise
finished = time.time()
new = sorted(set(sys.modules) - loaded)         # what gitdesk imported, lazily or not
own, sqlite = {}, 0.0
if profiled:
    profile.disable()
    for (f, _, name), v in pstats.Stats(profile).stats.items():
        if "/gitdesk/" in f:
            mod = f.split("/gitdesk/", 1)[1]
            own[mod] = own.get(mod, 0.0) + v[2]
        if "sqlite3.Connection" in name or "sqlite3.Cursor" in name:
            sqlite += v[2]
import json
print("PROBE " + json.dumps({"start": started - spawned, "imports": imported - started,
                             "run": finished - imported, "git_calls": git[0], "git_seconds": git[1],
                             "new": new, "own": own, "sqlite": sqlite}), file=sys.stderr)
"""


def _probe(args: list[str], cwd: Path, stdin: bytes | None, profiled: bool = False) -> dict:
    """One ``gitdesk ARGS`` run, taken apart: its wall time from outside; the imports it did
    beyond what ``python -c pass`` loads (``-X importtime``, lazy imports included, with the
    package that costs most); its git subprocesses (count and wall time); with ``profiled``,
    cProfile's own time per gitdesk module and SQLite's time."""
    import json

    spawned = time.time()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", _PROBE, repr(spawned),
                           "profile" if profiled else "plain", *args], cwd=cwd, input=stdin,
                          capture_output=True, env=child_env(gitdesk_env()))
    wall = time.perf_counter() - start
    lines = proc.stderr.decode(errors="replace").splitlines()
    found = [json.loads(x[6:]) for x in lines if x.startswith("PROBE ")]
    if proc.returncode != 0 or not found:
        raise SystemExit(f"profile run of gitdesk {' '.join(args)} failed:\n" + "\n".join(lines[-30:]))
    data = found[0]
    ours = set(data.pop("new"))
    per_package: dict[str, float] = defaultdict(float)
    imports, top = 0.0, ""
    for line in reversed(lines):   # importtime prints a module after what it imported
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if not m:
            continue
        depth, name = (len(m[3]) - 1) // 2, m[4]
        if depth == 0:
            top = name
            if top in ours:
                imports += int(m[2]) / 1e6
        if top in ours:
            per_package[name.split(".")[0].lstrip("_")] += int(m[1]) / 1e6
    return {**data, "wall": wall, "all_imports": imports,
            "packages": sorted(per_package.items(), key=lambda x: -x[1])}


def where_time_goes(result: dict, work: Path) -> dict:
    """gitdesk's time per message taken apart, on fresh copies after the timed rounds: the
    pipe over its first dozen messages (median of each part), the batch over the first 100."""
    raws, templates = result["raws"]["gitdesk"], result["templates"]
    folder = work / "profile"
    folder.mkdir()
    pipe_desk = folder / "pipe"
    shutil.copytree(templates["gitdesk"], pipe_desk, symlinks=True)
    probes = [_probe(["-C", str(pipe_desk), "mail", "ingest"], folder, raw) for raw in raws[:12]]
    batch_desk = folder / "batch"
    shutil.copytree(templates["gitdesk"], batch_desk, symlinks=True)
    box = folder / "batch.mbox"
    write_mbox(box, raws[:100])
    batch = _probe(["-C", str(batch_desk), "mail", "ingest", "--mbox", str(box)], folder, None, profiled=True)
    pipe = {key: statistics.median(p[key] for p in probes)
            for key in ("wall", "start", "imports", "all_imports", "run", "git_calls", "git_seconds")}
    packages: dict[str, list[float]] = defaultdict(list)
    for p in probes:
        for name, seconds in p["packages"]:
            packages[name].append(seconds)
    pipe["packages"] = sorted(((name, statistics.median(v + [0.0] * (len(probes) - len(v))))
                               for name, v in packages.items()), key=lambda x: -x[1])
    return {"pipe": pipe, "pipe_messages": len(probes), "batch": batch, "n": len(raws[:100])}


# -- the table --------------------------------------------------------------------------------
def table(result: dict, rounds: int, profile: dict | None, load: tuple[float, float], version: str) -> str:
    per = result["per"]

    def ms(value: float) -> str:
        return f"{1000 * value:.1f}" if value < 0.1 else f"{1000 * value:.0f}"

    def span(values: list[float]) -> str:
        return f"{ms(statistics.median(values))} ms ({ms(min(values))}–{ms(max(values))})"

    def ratio(key: str, goal: float | None) -> str:
        value = statistics.median(per[key]["gitdesk"]) / statistics.median(per[key]["roundup"])
        return f"{value:.2f}×" + ("" if goal is None else (" ✓" if value <= goal else " ✗"))

    rows = [
        "| mode | measure | `gitdesk mail ingest` | `roundup-mailgw` | ratio | goal |",
        "| :-- | :-- | ---: | ---: | ---: | :-- |",
        f"| pipe: a process per message | wall | {span(per['pipe wall']['gitdesk'])} | "
        f"{span(per['pipe wall']['roundup'])} | {ratio('pipe wall', GOAL_PIPE)} | ≤ {GOAL_PIPE}× |",
        f"| | CPU (user+sys) | {span(per['pipe cpu']['gitdesk'])} | {span(per['pipe cpu']['roundup'])} "
        f"| {ratio('pipe cpu', GOAL_PIPE)} | |",
        f"| | wall, new tickets | {span(per['pipe new']['gitdesk'])} | {span(per['pipe new']['roundup'])} "
        f"| {ratio('pipe new', None)} | |",
        f"| | wall, replies | {span(per['pipe reply']['gitdesk'])} | {span(per['pipe reply']['roundup'])} "
        f"| {ratio('pipe reply', None)} | |",
        f"| batch: one process, an mbox (`--mbox` / `mailbox`) | wall | "
        f"{span(per['batch wall']['gitdesk'])} | {span(per['batch wall']['roundup'])} | "
        f"{ratio('batch wall', GOAL_BATCH)} | ≤ {GOAL_BATCH}× |",
        f"| | CPU (user+sys) | {span(per['batch cpu']['gitdesk'])} | {span(per['batch cpu']['roundup'])} "
        f"| {ratio('batch cpu', GOAL_BATCH)} | |",
        f"| | peak RSS | {max(per['batch rss']['gitdesk'])} MiB | {max(per['batch rss']['roundup'])} MiB "
        f"| {max(per['batch rss']['gitdesk']) / max(per['batch rss']['roundup']):.2f}× | |",
    ]
    floor = per["floor"]
    floor_rows = [
        "| floor | wall | CPU (user+sys) |", "| :-- | ---: | ---: |",
        f"| `python -c pass` | {span(floor['python'])} | {span(floor['python_cpu'])} |",
        f"| `git commit` of one changed file | {span(floor['git'])} | {span(floor['git_cpu'])} |",
    ]
    git_version = run(["git", "--version"], cwd=HERE).split()[-1]
    machine = (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, gitdesk "
               f"{version}, Roundup {ROUNDUP} (classic template, sqlite "
               f"backend), git {git_version}, {platform.system()} {platform.release()}")
    n, new = result["n"], result["new"]
    lines = [
        "# Mail gateway: gitdesk against Roundup's roundup-mailgw", "",
        f"Measured {dt.date.today().isoformat()} on {machine}; time per message, median of {rounds} "
        "round(s) (min–max), each round on fresh copies of both trackers, alternating which goes "
        f"first; load average {load[0]:.1f} at the start and {load[1]:.1f} at the end (other work on "
        f"the machine slows both alike, CPU time least); goals: pipe ≤ {GOAL_PIPE}× and batch ≤ "
        f"{GOAL_BATCH}× Roundup. "
        "Made by `make bench-mail` (benchmarks/mail/run.py).", "",
        f"{n:,} messages: {new:,} new tickets from as many customers, {n - new:,} replies by the customer "
        f"(`[#N]` / `[issueN]` in the subject, most with `In-Reply-To`), {result['files']} with an "
        f"attachment; {result['mean_kib']:.1f} KiB on average, {result['max_kib']:.0f} KiB at most. "
        "After every run both trackers were checked to hold every ticket, reply and attachment. "
        "Pipe: one process per message, the message on stdin, as an MTA delivers it. Batch: one "
        "process reads an mbox of all of them and commits each message on its own; its time per "
        "message includes one process start.", "",
        *rows, "", *floor_rows, "",
    ]
    if profile:
        lines += where_paragraph(result, profile), ""
    return "\n".join(lines)


def where_paragraph(result: dict, profile: dict) -> str:
    """The probes' numbers in words. Pipe: the wall time of a run is split into the interpreter's
    start (until the first line of the probe), gitdesk's imports (lazy ones included), its git
    subprocesses, its own Python work (the rest of the run) and the exit (after the run)."""
    per = result["per"]
    p, b, n = profile["pipe"], profile["batch"], profile["n"]
    floor = statistics.median(per["floor"]["python"])
    git_floor = statistics.median(per["floor"]["git"])
    work = p["imports"] + p["run"] - p["all_imports"] - p["git_seconds"]
    leave = p["wall"] - p["start"] - p["imports"] - p["run"]
    packages = ", ".join(f"{name} {1000 * s:.0f}" for name, s in p["packages"][:6])
    own = sorted(b["own"].items(), key=lambda x: -x[1])
    own_total = sum(v for _, v in own) / n
    own_text = ", ".join(f"`{name}` {1000 * s / n:.1f}" for name, s in own[:3])
    batch_rest = (b["wall"] - b["git_seconds"] - b["sqlite"] - b["start"] - b["all_imports"]) / n

    def ms_pct(x: float, of: float) -> str:
        return f"{1000 * x:.0f} ms ({100 * x / of:.0f}%)"

    return (
        "**Where gitdesk's time goes** (measured after the timed rounds on fresh copies: each run "
        "under `python -X importtime` with its git calls timed, the batch also under cProfile). "
        f"*Pipe* (median of the first {profile['pipe_messages']} messages, {1000 * p['wall']:.0f} ms "
        f"each under these probes): Python starts in {1000 * p['start']:.0f} ms (a bare `python -c "
        f"pass`, start and exit, is {1000 * floor:.0f} ms); gitdesk's imports take "
        f"{ms_pct(p['all_imports'], p['wall'])[:-1]}; own import time by package, ms: {packages}); "
        f"{p['git_calls']:.0f} git subprocesses take {ms_pct(p['git_seconds'], p['wall'])}, "
        f"{1000 * p['git_seconds'] / max(p['git_calls'], 1):.1f} ms each (one plain `git commit` is "
        f"{1000 * git_floor:.0f} ms); gitdesk's own Python work (parsing, YAML, writing the files, "
        f"the Message-ID cache, queuing the acknowledgement) takes {ms_pct(max(work, 0), p['wall'])}; "
        f"the exit, {ms_pct(max(leave, 0), p['wall'])}. "
        f"*Batch* ({n} messages in one process, {1000 * b['wall'] / n:.1f} ms each under cProfile): "
        f"{b['git_calls'] / n:.1f} git subprocesses a message take {1000 * b['git_seconds'] / n:.1f} ms "
        f"({100 * b['git_seconds'] / b['wall']:.0f}%), SQLite {1000 * b['sqlite'] / n:.1f} ms; start "
        f"and imports once, {1000 * (b['start'] + b['all_imports']):.0f} ms in all; of the other "
        f"{1000 * batch_rest:.1f} ms a message, gitdesk's own functions take {1000 * own_total:.1f} ms "
        f"(own time; most {own_text}), the rest is the standard library (email parsing, YAML, "
        "files) and the profiler.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="how many messages (default 200)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table is written")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--no-profile", action="store_true", help="leave out 'where the time goes'")
    args = parser.parse_args(argv)
    if args.messages < 2 or args.rounds < 1:
        parser.error("need at least 2 messages and 1 round")
    rbin = roundup_bin()
    WORK.mkdir(parents=True, exist_ok=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="mail-", dir=WORK))
    work = work.resolve()
    if args.keep and work.exists() and any(work.iterdir()):
        parser.error(f"{work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    try:
        version = snapshot_gitdesk(work)
        result = measure(args.messages, args.rounds, work, rbin)
        profile = None if args.no_profile else where_time_goes(result, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = table(result, args.rounds, profile, (load_start, os.getloadavg()[0]), version)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
