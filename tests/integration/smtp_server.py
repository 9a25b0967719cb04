#!/usr/bin/python3
"""A real SMTP server for the integration tests, on aiosmtpd (Debian: python3-aiosmtpd).

Each accepted message is written to --dir as <n>.eml (n counts from 1). Each line of
--log records one event: "AUTH <mechanism> <login> ok|refused", "RCPT <address> <code>",
"DATA <code>", "DIE". Behaviour is chosen by flags:

  --starttls CERT KEY      offer STARTTLS with this certificate (and require it)
  --implicit-tls CERT KEY  TLS from the first byte (port 465 style)
  --auth USER:PASSWORD     require AUTH with these credentials
  --no-plain               offer only AUTH LOGIN
  --reject ADDRESS         answer RCPT TO for ADDRESS with 550
  --defer N                answer the first N messages' final dot with 451
  --die-after-data N       on message N, store it and exit before replying (the client
                           sees the connection drop after its final dot)
  --pipelining             announce PIPELINING (aiosmtpd reads commands in order anyway)
  --size-limit N           announce SIZE N and refuse bigger messages
  --shutting-down N        answer MAIL FROM with 421 in every Nth session's first
                           transaction (the server going away)
"""
import argparse
import asyncio
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, args):
        self.args = args
        # A restarted server goes on numbering where the last one stopped.
        self.count = len([f for f in os.listdir(args.dir) if f.endswith(".eml")])
        self.deferred = 0
        self.lock = threading.Lock()

    def log(self, line):
        with self.lock, open(self.args.log, "a") as f:
            f.write(line + "\n")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.args.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.args.shutting_down:
            self.sessions_seen = getattr(self, "sessions_seen", 0)
            if getattr(session, "journeyd_seen", False) is False:
                session.journeyd_seen = True
                self.sessions_seen += 1
                if self.sessions_seen % self.args.shutting_down == 1:
                    self.log("MAIL 421")
                    return "421 4.3.2 Service shutting down, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.args.reject:
            self.log(f"RCPT {address} 550")
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        self.log(f"RCPT {address} 250")
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.data_delay > 0:
            self.log("DATA wait")
            await asyncio.sleep(self.args.data_delay)
        if self.deferred < self.args.defer:
            self.deferred += 1
            self.log("DATA 451")
            return "451 4.3.0 Try again later"
        self.count += 1
        n = self.count
        path = os.path.join(self.args.dir, f"{n}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        if n == self.args.die_after_data:
            self.log("DIE")
            os._exit(3)
        self.log("DATA 250")
        return "250 2.0.0 Ok: queued as %d" % n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--starttls", nargs=2)
    p.add_argument("--implicit-tls", nargs=2)
    p.add_argument("--auth")
    p.add_argument("--no-plain", action="store_true")
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--defer", type=int, default=0)
    p.add_argument("--data-delay", type=float, default=0)
    p.add_argument("--die-after-data", type=int, default=0)
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--size-limit", type=int, default=0)
    p.add_argument("--shutting-down", type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handler = Handler(args)

    kwargs = {}
    if args.size_limit:
        kwargs["data_size_limit"] = args.size_limit
    ssl_context = None
    if args.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*args.starttls)
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = True
    if args.implicit_tls:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(*args.implicit_tls)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
            handler.log(f"AUTH {mechanism} {login} {'ok' if ok else 'refused'}")
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = bool(args.starttls or args.implicit_tls)
        if args.no_plain:
            kwargs["auth_exclude_mechanism"] = ["PLAIN"]

    controller = Controller(handler, hostname="127.0.0.1", port=args.port,
                            ssl_context=ssl_context, server_hostname="localhost", **kwargs)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
