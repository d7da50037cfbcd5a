#!/usr/bin/env python3
"""Every alert of deploy/prometheus/alerts.yml carries annotations.runbook_url pointing
to its own section of docs/RUNBOOK.md, and every section there belongs to an alert
and says what the alert means, its likely causes, what to check and what to do.

usage: check_runbook.py ALERTS_YML RUNBOOK_MD   (exit 0 ok, 1 with one line per problem)
"""
import re
import sys

import yaml

PARTS = ("**Meaning.**", "**Likely causes.**", "**What to check.**", "**What to do.**")
URL = re.compile(r"^(?:.*/)?docs/RUNBOOK\.md#([a-z0-9-]+)$")


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def sections(text):
    out, name, body = {}, None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if name:
                out[slug(name)] = (name, "\n".join(body))
            name, body = line[3:], []
        elif name:
            body.append(line)
    if name:
        out[slug(name)] = (name, "\n".join(body))
    return out


def main(alerts_path, runbook_path):
    errs = []
    rules = yaml.safe_load(open(alerts_path))
    book = sections(open(runbook_path).read())
    anchors = set()
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            url = (rule.get("annotations") or {}).get("runbook_url", "")
            m = URL.match(url)
            if not m:
                errs.append(f"{name}: annotations.runbook_url {url!r} does not point into docs/RUNBOOK.md#...")
                continue
            anchors.add(m.group(1))
            if m.group(1) != slug(name):
                errs.append(f"{name}: runbook_url anchor #{m.group(1)} is not the alert's section #{slug(name)}")
            if m.group(1) not in book:
                errs.append(f"{name}: docs/RUNBOOK.md has no section '## {name}'")
    for anchor, (title, body) in book.items():
        if anchor not in anchors:
            errs.append(f"docs/RUNBOOK.md: section '## {title}' belongs to no alert of alerts.yml")
        for part in PARTS:
            if part not in body:
                errs.append(f"docs/RUNBOOK.md: section '## {title}' lacks {part}")
    if not anchors:
        errs.append(f"{alerts_path}: no alerts")
    for e in errs:
        print(e, file=sys.stderr)
    print(f"{len(anchors)} alerts, {len(book)} runbook sections: " + ("ok" if not errs else f"{len(errs)} problem(s)"))
    return 1 if errs else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
