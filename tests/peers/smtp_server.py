"""A real SMTP server for Kevlar's tests: aiosmtpd on 127.0.0.1, a port chosen by the system.

Usage: smtp_server.py OUTDIR [--cert CERT --key KEY [--implicit-tls]] [--user USER --password PASSWORD]

With --cert/--key the server offers STARTTLS and requires it (with --implicit-tls it speaks TLS from
the first byte instead, as on port 465); with --user/--password it requires
AUTH (PLAIN or LOGIN, only after STARTTLS). Each message is written to OUTDIR as N.eml, with the
envelope in N.json. Prints "PORT <n>" on stdout once listening; stops when stdin closes.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.outdir, str(self.n))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "tls": session.ssl is not None
                       or server.transport.get_extra_info("sslcontext") is not None,
                       "auth": bool(session.authenticated)}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("outdir")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--implicit-tls", action="store_true")
    a = p.parse_args()

    tls = None
    if a.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            auth_data.login.decode() == a.user and auth_data.password.decode() == a.password
        return AuthResult(success=ok, handled=False)

    handler = Saver(a.outdir)

    def factory():
        kw = {}
        if tls and not a.implicit_tls:
            kw.update(tls_context=tls, require_starttls=True)
        if a.user:
            kw.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=bool(tls) and not a.implicit_tls)
        return SMTP(handler, hostname="localhost", **kw)

    async def run():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", 0,
                                          ssl=tls if a.implicit_tls else None)
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
