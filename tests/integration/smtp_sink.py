"""An SMTP sink for the integration tests: just enough of RFC 5321 for libcurl, recording
{from, rcpt, data} for each message (test_notify: notifier mail; test_email: the
acknowledgement to the customer)."""

import re
import socketserver
import threading


class SmtpSink(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def received(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.shutdown()
        self.server_close()


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode("ascii") + b"\r\n")

    def handle(self):
        self.reply("220 sink.test ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.upper()
            if verb.startswith("EHLO"):
                self.wfile.write(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
            elif verb.startswith("HELO"):
                self.reply("250 sink.test")
            elif verb.startswith("MAIL FROM:"):
                mail_from = re.match(r"(?i)MAIL FROM:\s*(<[^>]*>)", cmd).group(1)
                rcpts = []
                self.reply("250 2.1.0 ok")
            elif verb.startswith("RCPT TO:"):
                rcpts.append(re.match(r"(?i)RCPT TO:\s*(<[^>]*>)", cmd).group(1))
                self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if not data or data == b".\r\n":
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)
                with self.server.lock:
                    self.server.messages.append({"from": mail_from, "rcpt": list(rcpts),
                                                 "data": b"".join(lines)})
                self.reply("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye")
                return
            else:
                self.reply("502 5.5.2 not implemented")
