#!/usr/bin/env python3
"""ext-agent.py - a complete Loom extensible agent (docs/agents.md
"Extensible agents"), in plain Python 3 with no module outside the
standard library.

Its connected system is a JSON file (--data FILE) that stands for any
system an administrator wants to connect: a web service, a SaaS API, an
in-house database. Replace load()/save() with calls to that system and
the protocol part stays as it is.

    {
      "seq": 3,                              # last change number
      "objects": {                           # anchor -> object
        "1001": {"dn": "uid=ada,ou=people", "attrs": {"uid": "ada", "mail": ["a@x", "b@x"]}}
      },
      "changelog": [{"seq": 3, "anchor": "1001"}],   # what changed, for delta imports
      "passwords": {"1001": "<salt>$<sha256>"}       # set_password stores a salted hash
    }

loom-ma-ext starts this program once per operation and writes one JSON
message per line on its stdin; the program answers with one JSON message
per line on its stdout (stderr lines go to Loom's log):

  import        -> object... (error...) end {watermark}     or fail
  export        -> then change... batch_end per batch -> result per change
  set_password  -> password_result
  schema        -> schema {types: [{name, anchor, attrs: [{name, type, multi}]}]}
  test          -> test_result {ok, message}

Run it by hand to see the protocol:

    echo '{"type":"import","mode":"full","watermark":""}' | \\
        python3 ext-agent.py --data people.json
"""
import argparse
import hashlib
import json
import os
import secrets
import sys
import tempfile


def send(msg):
    """One message: one line of JSON on stdout, flushed at once (Loom waits for it)."""
    sys.stdout.write(json.dumps(msg, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(text, level="info"):
    send({"type": "log", "level": level, "message": text})


def load(path):
    if not os.path.exists(path):
        return {"seq": 0, "objects": {}, "changelog": [], "passwords": {}}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    for key, empty in (("seq", 0), ("objects", {}), ("changelog", []), ("passwords", {})):
        data.setdefault(key, empty)
    return data


def save(path, data):
    """Replace the file atomically: temporary file, fsync, rename."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".ext-agent.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def record_change(data, anchor):
    data["seq"] += 1
    data["changelog"].append({"seq": data["seq"], "anchor": anchor})


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def object_message(anchor, obj, change):
    return {"type": "object", "change": change, "anchor": anchor, "dn": obj["dn"],
            "object_type": obj.get("object_type", "person"), "attrs": obj["attrs"]}


# ---- import ------------------------------------------------------------------------

def do_import(req, data):
    if req.get("mode") == "delta":
        wm = req.get("watermark") or ""
        if not wm.isdigit():
            # No watermark we made: the engine must run a full import first.
            send({"type": "fail", "message": "no usable watermark '%s': run a full import" % wm})
            return
        since = int(wm)
        if since > data["seq"]:
            send({"type": "fail", "message": "watermark %d is ahead of the data (%d): run a full import"
                  % (since, data["seq"])})
            return
        changed = []
        for entry in data["changelog"]:
            if entry["seq"] > since and entry["anchor"] not in changed:
                changed.append(entry["anchor"])
        for anchor in changed:
            obj = data["objects"].get(anchor)
            if obj is None:
                send({"type": "object", "change": "delete", "anchor": anchor})
            else:
                send(object_message(anchor, obj, "replace"))
    else:
        for anchor, obj in sorted(data["objects"].items()):
            if "dn" not in obj or not isinstance(obj.get("attrs"), dict):
                # A record this system holds but cannot describe: an error on it, the import goes on.
                send({"type": "error", "anchor": anchor, "code": "bad-record",
                      "message": "the record has no dn or no attrs"})
                continue
            send(object_message(anchor, obj, "full"))
    send({"type": "end", "watermark": str(data["seq"])})


# ---- export ------------------------------------------------------------------------

def apply_change(data, anchor_attr, ch):
    """Applies one change; returns the result message."""
    rid = ch["id"]
    op = ch["op"]
    if op == "add":
        attrs = ch.get("attrs", {})
        anchor = as_list(attrs.get(anchor_attr))
        if anchor_attr == "dn":
            anchor = [ch["dn"].lower()]
        if not anchor:
            return {"type": "result", "id": rid, "ok": False, "code": "missing-anchor",
                    "message": "the object has no %s" % anchor_attr}
        anchor = str(anchor[0])
        data["objects"][anchor] = {"dn": ch.get("new_dn") or ch["dn"], "object_type": ch.get("object_type", "person"),
                                   "attrs": {k: v if len(v) != 1 else v[0] for k, v in attrs.items()}}
        record_change(data, anchor)
        return {"type": "result", "id": rid, "ok": True, "anchor": anchor}
    anchor = ch.get("anchor") or ""
    obj = data["objects"].get(anchor)
    if op == "delete":
        if obj is not None:
            del data["objects"][anchor]
            data["passwords"].pop(anchor, None)
            record_change(data, anchor)
        return {"type": "result", "id": rid, "ok": True}
    if obj is None:
        return {"type": "result", "id": rid, "ok": False, "code": "no-such-object",
                "message": "no object with anchor '%s'" % anchor, "retryable": False}
    attrs = obj["attrs"]
    for d in ch.get("deltas", []):
        name, values = d["name"], d.get("values", [])
        cur = as_list(attrs.get(name))
        if d["op"] == "replace":
            cur = list(values)
        elif d["op"] == "add":
            cur += [v for v in values if v not in cur]
        elif d["op"] == "delete":
            cur = [v for v in cur if v not in values] if values else []
        if cur:
            attrs[name] = cur if len(cur) != 1 else cur[0]
        else:
            attrs.pop(name, None)
    if ch.get("new_dn"):
        obj["dn"] = ch["new_dn"]
    record_change(data, anchor)
    return {"type": "result", "id": rid, "ok": True}


def do_export(req, data, path, lines):
    anchor_attr = req.get("anchor", "id")
    pending = []
    for line in lines:
        msg = json.loads(line)
        if msg["type"] == "change":
            pending.append(msg)
        elif msg["type"] == "batch_end":
            # Apply the batch, make it durable, then answer every change of it.
            results = [apply_change(data, anchor_attr, ch) for ch in pending]
            save(path, data)
            for r in results:
                send(r)
            pending = []
    # stdin ended: the export run is over.


# ---- passwords ------------------------------------------------------------------------

def do_set_password(req, data, path):
    anchor = req.get("anchor") or ""
    if not anchor:
        for a, obj in data["objects"].items():
            if obj.get("dn", "").lower() == (req.get("dn") or "").lower():
                anchor = a
    if anchor not in data["objects"]:
        send({"type": "password_result", "ok": False, "code": "no-such-object",
              "message": "no account '%s'" % (req.get("dn") or req.get("anchor"))})
        return
    password = req["password"]
    if len(password) < 8:
        send({"type": "password_result", "ok": False, "code": "constraint-violation",
              "message": "the password is shorter than 8 characters"})
        return
    salt = secrets.token_hex(8)
    data["passwords"][anchor] = salt + "$" + hashlib.sha256((salt + password).encode()).hexdigest()
    save(path, data)
    send({"type": "password_result", "ok": True})


# ---- schema and connection test -----------------------------------------------------

def value_type(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    return "string"


def do_schema(req, data):
    # What the objects hold: a real system would describe its own schema here.
    types = {}
    for obj in data["objects"].values():
        t = types.setdefault(obj.get("object_type", "person"), {})
        for name, v in obj.get("attrs", {}).items():
            vals = as_list(v)
            a = t.setdefault(name, {"name": name, "type": value_type(vals[0]) if vals else "string", "multi": False})
            a["multi"] = a["multi"] or len(vals) > 1
    send({"type": "schema", "can_delta": True, "can_export": True,
          "types": [{"name": n, "anchor": "id", "attrs": list(a.values())} for n, a in sorted(types.items())]})


def do_test(req, data, path):
    # A real system: log in, call a harmless endpoint.
    if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
        send({"type": "test_result", "ok": False, "message": "cannot write beside %s" % path})
        return
    send({"type": "test_result", "ok": True,
          "message": "%s readable: %d objects, change %d" % (path, len(data["objects"]), data["seq"])})


def main():
    ap = argparse.ArgumentParser(description="A Loom extensible agent over a JSON file.")
    ap.add_argument("--data", required=True, help="the JSON file that is the connected system")
    args = ap.parse_args()
    lines = (line for line in sys.stdin if line.strip())
    first = next(lines, None)
    if first is None:
        return 0
    req = json.loads(first)
    try:
        data = load(args.data)
    except (OSError, ValueError) as e:
        send({"type": "fail", "message": "cannot read %s: %s" % (args.data, e)})
        return 0
    if req["type"] == "import":
        do_import(req, data)
    elif req["type"] == "export":
        do_export(req, data, args.data, lines)
    elif req["type"] == "set_password":
        do_set_password(req, data, args.data)
    elif req["type"] == "schema":
        do_schema(req, data)
    elif req["type"] == "test":
        do_test(req, data, args.data)
    else:
        send({"type": "fail", "message": "unknown request '%s'" % req["type"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
