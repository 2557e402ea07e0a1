#!/usr/bin/env python3
"""ptyrun.py TRANSCRIPT NEWPW CMD... - runs CMD (loomctl sspr ...) on a pseudo
terminal and answers its prompts: a question (a prompt ending in '? ') from
the SSPR_ANSWERS environment variable (lines 'question<TAB>answer'), a
password prompt with NEWPW (or SSPR_CURRENT for 'Current password'). Writes
everything the terminal showed to TRANSCRIPT (the test checks no secret was
echoed) and exits with CMD's status."""
import os
import pty
import select
import sys

transcript, newpw, cmd = sys.argv[1], sys.argv[2].encode(), sys.argv[3:]
answers = {}
for line in os.environ.get("SSPR_ANSWERS", "").splitlines():
    q, _, a = line.partition("\t")
    answers[q.encode()] = a.encode()
current = os.environ.get("SSPR_CURRENT", "").encode()

pid, fd = pty.fork()
if pid == 0:
    os.execv(cmd[0], cmd)
shown, pending = b"", b""
while True:
    r, _, _ = select.select([fd], [], [], 20)
    if not r:
        break
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    shown += chunk
    pending += chunk
    reply = None
    if pending.endswith(b"? "):
        q = pending.rstrip().splitlines()[-1].strip()
        reply = answers.get(q, b"")
    elif pending.endswith(b"Retype the new password: ") or pending.rstrip().startswith(b"New password") or \
            b"New password for" in pending.splitlines()[-1]:
        reply = newpw
    elif b"Current password of" in pending.splitlines()[-1] and pending.endswith(b": "):
        reply = current
    if reply is not None:
        os.write(fd, reply + b"\n")
        pending = b""
_, status = os.waitpid(pid, 0)
with open(transcript, "wb") as f:
    f.write(shown)
sys.exit(os.waitstatus_to_exitcode(status))
