#!/usr/bin/env python3
"""ext_null.py - the cheapest possible extensible agent, for bench_agents.sh:
it measures loom-ma-ext and its JSON-lines protocol, not a connected
system. Import: N generated objects (--objects N). Export: every change
answered ok at its batch's end."""
import json
import sys

n = int(sys.argv[sys.argv.index("--objects") + 1]) if "--objects" in sys.argv else 0
out = sys.stdout
req = json.loads(sys.stdin.readline())
if req["type"] == "import":
    # The objects bench_agents.sh exports: reading them back confirms the export.
    for i in range(1, n + 1):
        e = 100000 + i
        out.write(json.dumps({"type": "object", "anchor": "u%d" % e, "dn": "uid=u%d" % e,
                              "attrs": {"uid": "u%d" % e, "cn": "Given%d Sur%d" % (i, i), "sn": "Sur%d" % i,
                                        "mail": "u%d@example.com" % e, "title": "Engineer",
                                        "employeeNumber": str(e)}}) + "\n")
    out.write('{"type":"end","watermark":"%d"}\n' % n)
elif req["type"] == "export":
    ids = []
    for line in sys.stdin:
        m = json.loads(line)
        if m["type"] == "change":
            ids.append((m["id"], m.get("attrs", {}).get("uid", [""])[0]))
        elif m["type"] == "batch_end":
            for cid, uid in ids:
                out.write('{"type":"result","id":%d,"ok":true,"anchor":%s}\n' % (cid, json.dumps(uid)))
            out.flush()
            ids = []
out.flush()
