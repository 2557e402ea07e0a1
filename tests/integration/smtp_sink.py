#!/usr/bin/env python3
"""smtp_sink.py PORT DIR - a minimal SMTP server on 127.0.0.1 for the
integration tests: accepts every message and writes it to DIR/NNNN.eml,
headed by 'X-Envelope-From:' and one 'X-Envelope-To:' line per recipient.
'--fail N' answers the first N messages' DATA with 451 (to test retries).
Prints 'listening on PORT' once it accepts connections."""
import os
import socketserver
import sys
import threading

PORT = int(sys.argv[1])
DIR = sys.argv[2]
FAIL = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--fail" else 0
lock = threading.Lock()
count = [0, 0]  # messages written, DATA commands seen


class Handler(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.say("220 sink ready")
        mail_from, rcpt = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            cmd = line[:4].upper()
            if cmd in ("EHLO", "HELO"):
                self.say("250-sink")
                self.say("250 8BITMIME")
            elif line.upper().startswith("MAIL FROM:"):
                mail_from, rcpt = line[10:].strip(), []
                self.say("250 ok")
            elif line.upper().startswith("RCPT TO:"):
                rcpt.append(line[8:].strip().strip("<>"))
                self.say("250 ok")
            elif cmd == "DATA":
                with lock:
                    count[1] += 1
                    refuse = count[1] <= FAIL
                if refuse:
                    self.say("451 try again later")
                    continue
                self.say("354 go on")
                body = []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    l = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if l == ".":
                        break
                    body.append(l[1:] if l.startswith("..") else l)
                with lock:
                    count[0] += 1
                    n = count[0]
                tmp = os.path.join(DIR, ".%04d.tmp" % n)
                with open(tmp, "w") as f:
                    f.write("X-Envelope-From: %s\n" % mail_from)
                    for r in rcpt:
                        f.write("X-Envelope-To: %s\n" % r)
                    f.write("\n".join(body) + "\n")
                os.rename(tmp, os.path.join(DIR, "%04d.eml" % n))
                self.say("250 queued")
            elif cmd == "QUIT":
                self.say("221 bye")
                return
            elif cmd in ("RSET", "NOOP"):
                self.say("250 ok")
            else:
                self.say("502 not implemented")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


os.makedirs(DIR, exist_ok=True)
with Server(("127.0.0.1", PORT), Handler) as srv:
    print("listening on %d" % PORT, flush=True)
    srv.serve_forever()
