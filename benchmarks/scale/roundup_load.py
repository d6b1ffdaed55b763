"""Loads the scale benchmark's tracker data into a Roundup tracker through Roundup's own Python
API; run by benchmarks/scale/run.py with the Python of Roundup's venv, not imported.

    python roundup_load.py load HOME DATA.json    # users, keywords, messages, issues
    python roundup_load.py count HOME             # prints {"issues": N, "messages": M, "users": U}

DATA.json is ``{"users": [...], "keywords": [...], "issues": [...]}`` with Roundup's names
already (status, priority, user names): the mapping from gitdesk's is run.py's. Each issue's
description becomes its first message, as Roundup keeps it. The reactor that mails the nosy
list is taken off for the load (an import mails no one); the auditors stay, so nosy lists and
message summaries are what Roundup would make. Commits every BATCH issues.
"""

import json
import sys
import time

from roundup import date, instance

BATCH = 500


def load(home, data_path):
    with open(data_path, encoding="utf-8") as f:
        data = json.load(f)
    db = instance.open(home).open("admin")
    for event in db.issue.reactors:
        db.issue.reactors[event].list[:] = [r for r in db.issue.reactors[event].list if r[1] != "nosyreaction"]
    users = {}
    for user in data["users"]:
        users[user["username"]] = db.user.create(username=user["username"], realname=user["realname"],
                                                 address=user["address"], roles=user.get("roles", "User"))
    keywords = {name: db.keyword.create(name=name) for name in data["keywords"]}
    status = {db.status.get(i, "name"): i for i in db.status.list()}
    priority = {db.priority.get(i, "name"): i for i in db.priority.list()}
    db.commit()
    start = time.perf_counter()
    total = len(data["issues"])
    for k, issue in enumerate(data["issues"], 1):
        messages = []
        for msg in issue["messages"]:
            extra = {"messageid": msg["messageid"]} if msg.get("messageid") else {}
            messages.append(db.msg.create(content=msg["content"], author=users[msg["author"]],
                                          date=date.Date(msg["date"]), **extra))
        props = {"title": issue["title"], "status": status[issue["status"]],
                 "priority": priority[issue["priority"]], "messages": messages,
                 "keyword": [keywords[x] for x in issue["keywords"]]}
        if issue.get("assignedto"):
            props["assignedto"] = users[issue["assignedto"]]
        db.issue.create(**props)
        if k % BATCH == 0 or k == total:
            db.commit()
            print(f"  Roundup: {k:,}/{total:,} issues ({time.perf_counter() - start:.0f}s)",
                  file=sys.stderr, flush=True)
    db.close()


def count(home):
    db = instance.open(home).open("admin")
    print(json.dumps({"issues": len(db.issue.list()), "messages": len(db.msg.list()),
                      "users": len(db.user.list())}))
    db.close()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3])
    else:
        count(sys.argv[2])
