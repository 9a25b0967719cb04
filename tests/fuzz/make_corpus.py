#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/ from the repository's fixtures: the shipped
flows and templates, the flow fixtures, the event timelines and strings of the unit tests.
Run from anywhere; it replaces tests/fuzz/corpus/<target>/ for the targets it knows.
The state codec's seeds (corpus/state) are encoded states and are kept as they are."""
import glob
import hashlib
import hmac
import base64
import json
import os
import re
import shutil

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/fuzz/corpus")


def write(target, seeds):
    d = os.path.join(OUT, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for i, s in enumerate(seeds):
        if isinstance(s, str):
            s = s.encode()
        with open(os.path.join(d, "seed%02d" % i), "wb") as f:
            f.write(s)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def flow_files():
    return sorted(glob.glob(os.path.join(ROOT, "flows/*.yaml")) +
                  glob.glob(os.path.join(ROOT, "tests/fixtures/flows/*/*.yaml")))


# ---- expr: options byte, choice length byte, choices, the expression ------------------------
def expressions():
    found = set()
    for p in flow_files():
        for m in re.finditer(r"^\s*-?\s*(?:if|when|date|at):\s*(.+)$", read(p), re.M):
            found.add(m.group(1).strip())
    for m in re.finditer(r'(?:Parse|MustParse|TryParse)\("((?:[^"\\]|\\.)*)"',
                         read("tests/unit/flow/expr_test.cpp")):
        found.add(m.group(1).encode().decode("unicode_escape"))
    found.update([
        'event.type in ["purchase", "refund"]', "customer.points_expire_at - 3d",
        "-(-customer.orders) * 2 / 0", "customer.tags in [1, 'a', true, null, now]",
        "((((((((1))))))))", "customer.last_purchase_at < now - 6w || !customer.vip",
        "'a\\n\\t\\'\\\\' == \"x\"", "1e308 * 10 > 0", "trigger.ts + 30m >= event.ts",
    ])
    return sorted(found)[:40]


def expr_seeds():
    return [bytes([3, 4, 0x12, 0x25, 0x08, 0x3f]) + e.encode() for e in expressions()]


# ---- loader: "%%% <path>" files --------------------------------------------------------------
def loader_seeds():
    seeds = []
    for p in flow_files():
        text = read(p)
        rel = "flows/" + os.path.basename(p)
        tdir = os.path.join(os.path.dirname(p), "templates")
        parts = ["%%% " + rel + "\n" + text]
        for name in sorted(set(re.findall(r"template:\s*([a-z0-9_]+)|send:\s*([a-z0-9_]+)", text))):
            for n in name:
                if not n:
                    continue
                for t in sorted(glob.glob(os.path.join(tdir, n + ".yaml")) +
                                glob.glob(os.path.join(tdir, "*", n + ".yaml"))):
                    trel = os.path.relpath(t, tdir)
                    parts.append("%%% flows/templates/" + trel + "\n" + read(t))
        seeds.append("".join(parts))
    return seeds


# ---- template: FuzzedDataProvider layout (see template_fuzz.cpp) -----------------------------
def fdp_string(s):
    return s.replace("\\", "\\\\") + "\\\n"


def template_seeds():
    seeds = []
    files = sorted(glob.glob(os.path.join(ROOT, "flows/templates/**/*.yaml"), recursive=True))
    for i, p in enumerate(files[:20]):
        t = yaml.safe_load(read(p))
        html = t.get("html")
        body = fdp_string("\x05\x17\x25\x06") + fdp_string(t["subject"])
        if html:
            body += fdp_string(html)
        body += t["text"]
        # Read from the end: marketing, has_html, whether `to` is given.
        seeds.append(body.encode() + bytes([0, 1 if html else 0, i % 2]))
    seeds.append(fdp_string("\x04") + fdp_string("{{ customer.first_name | upper }}\r\nBcc: x") +
                 "{{{ x }}} {{ \"{{\" }} {{ customer.birthday | date }} {{ t | money }}" + "\x00\x00\x01")
    return seeds


# ---- event: field names and values separated by NUL -------------------------------------------
def event_seeds():
    seeds = []
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/events/*.jsonl"))):
        for line in read(p).splitlines()[:6]:
            if not line.strip():
                continue
            ev = json.loads(line)
            fields = []
            for k, v in ev.items():
                fields += [k, v if isinstance(v, str) else json.dumps(v)]
            seeds.append("\0".join(fields))
    seeds.append(json.dumps({"type": "purchase", "customer_id": "c1", "ts": 1779008400000,
                             "data": {"total": 20}, "profile": {"vip": True}}))
    return seeds[:30]


# ---- admin: HTTP requests -------------------------------------------------------------------
SECRET = b"admin fuzzing secret"  # as in admin_fuzz.cpp


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def token(secret, customer, flow):
    head = b64(customer) + "." + b64(flow)
    return head + "." + hmac.new(secret, head.encode(), hashlib.sha256).hexdigest()[:32]


def admin_seeds():
    t = token(SECRET, "c-anna", "welcome")
    reqs = [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /metrics HTTP/1.0\r\n\r\n",
        "GET /v1/flows HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /v1/customers/c-anna HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/customers/%ff%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "DELETE /v1/customers/c1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /unsubscribe?token=" + t + " HTTP/1.1\r\nHost: x\r\n\r\n",
        "HEAD /unsubscribe?token=" + t + " HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /unsubscribe?token=" + t + " HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\nList-Unsubscribe=One-Click",
        "POST /unsubscribe?a=1&token=" + t[:-1] + "0 HTTP/1.1\r\nHost: x\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    return reqs


def unsubscribe_seeds():
    secret = b"fuzzing secret of the shop"  # as in unsubscribe_fuzz.cpp
    return [token(secret, "c-anna", "welcome"), token(secret, "a.b.c", "winback"),
            token(secret, "", ""), "c-anna\0welcome", "YWJj", "YWI", "YQ", "Y", "....",
            token(secret, "c-anna", "welcome").upper()]


def smtp_reply_seeds():
    strings = re.findall(r'Feed\("((?:[^"\\]|\\.)*)"\)', read("tests/unit/mail/smtp_reply_test.cpp"))
    seeds = ["\r\n".join(strings[i:i + 5]) for i in range(0, len(strings), 5)]
    seeds += [
        "220 mail.example ESMTP ready\r\n",
        "250-mail.example\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n"
        "250-AUTH PLAIN LOGIN\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n",
        "354 End data with <CR><LF>.<CR><LF>\r\n",
        "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
        "550 5.1.1 Please try double-checking the recipient's address.\r\n",
        "421 4.7.0 Try again later, closing connection.\r\n",
        "250 2.0.0 OK queued as 12345\r\n",
    ]
    return seeds


def resp_seeds():
    entry = ("*1\r\n*2\r\n$19\r\njourneyd:{0}:events\r\n*1\r\n*2\r\n$15\r\n1779008400000-0\r\n"
             "*6\r\n$4\r\ntype\r\n$8\r\npurchase\r\n$11\r\ncustomer_id\r\n$2\r\nc1\r\n"
             "$4\r\ndata\r\n$14\r\n{\"total\":20.5}\r\n")
    groups = ("*1\r\n*12\r\n$4\r\nname\r\n$8\r\njourneyd\r\n$9\r\nconsumers\r\n:1\r\n$7\r\npending\r\n"
              ":2\r\n$17\r\nlast-delivered-id\r\n$3\r\n0-0\r\n$12\r\nentries-read\r\n:5\r\n$3\r\nlag\r\n:0\r\n")
    seeds = ["+OK\r\n", "-ERR unknown command\r\n", ":1\r\n", "$3\r\nfoo\r\n", "$-1\r\n", "*-1\r\n",
             "*0\r\n", "*2\r\n$1\r\na\r\n:5\r\n", entry, groups,
             "*3\r\n+OK\r\n+QUEUED\r\n*2\r\n:1\r\n-ERR x\r\n",
             "*2\r\n$4\r\njob1\r\n$3\r\nbar\r\n", "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"]
    return [bytes([i % 7]) + s.encode() for i, s in enumerate(seeds)]


if __name__ == "__main__":
    write("expr", expr_seeds())
    write("loader", loader_seeds())
    write("template", template_seeds())
    write("event", event_seeds())
    write("admin", admin_seeds())
    write("unsubscribe", unsubscribe_seeds())
    write("smtp_reply", smtp_reply_seeds())
    write("resp", resp_seeds())
