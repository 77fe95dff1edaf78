#!/usr/bin/python3
# Owns the idle-client load of bench/run --idle: opens N authenticated PostgreSQL connections (md5 or
# cleartext) to a pooler, prints "ready N" once all are logged in and idle, and holds them open.
import argparse
import asyncio
import hashlib
import resource
import struct
import sys


def startup_packet(user, database):
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", database), ("application_name", "idle_clients")):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def password_message(data):
    return b"p" + struct.pack("!I", len(data) + 4) + data


async def read_message(reader):
    header = await reader.readexactly(5)
    length = struct.unpack("!I", header[1:])[0]
    return header[0:1], await reader.readexactly(length - 4)


async def login(host, port, user, password, database):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(startup_packet(user, database))
    while True:
        kind, body = await read_message(reader)
        if kind == b"R":
            code = struct.unpack("!I", body[:4])[0]
            if code == 5:  # md5
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
                outer = "md5" + hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                writer.write(password_message(outer.encode() + b"\0"))
            elif code == 3:  # cleartext
                writer.write(password_message(password.encode() + b"\0"))
            elif code != 0:
                raise RuntimeError(f"unsupported authentication request {code}")
        elif kind == b"E":
            raise RuntimeError(body.decode(errors="replace"))
        elif kind == b"Z":
            return reader, writer


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--database", default="postgres")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=600, help="seconds to hold the connections")
    ap.add_argument("--parallel", type=int, default=200, help="logins in flight at once")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    sem = asyncio.Semaphore(args.parallel)
    conns = []

    async def one():
        async with sem:
            conns.append(await login(args.host, args.port, args.user, args.password, args.database))

    results = await asyncio.gather(*(one() for _ in range(args.n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"failed {len(errors)} logins; first: {errors[0]!r}", flush=True)
        sys.exit(1)
    print(f"ready {len(conns)}", flush=True)
    try:
        await asyncio.sleep(args.hold)
    finally:
        for _, w in conns:
            w.close()


if __name__ == "__main__":
    asyncio.run(main())
