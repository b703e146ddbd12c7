#!/usr/bin/python3
"""A fake resident helper for trust tests (a test double, run by tests/daemon/lib.ts).

usage: fake_daemon.py SOCKET USER REPLY_FILE RECORD_FILE [touch]

Binds SOCKET as the calling user (root: the socket is then root-owned in a trusted directory),
makes it connectable by anyone, becomes USER (when started as root), and only then listens, so
that a client's SO_PEERCRED names USER. Every connection: read to end of stream (or 2 s), append the number of
bytes received to RECORD_FILE, send the bytes of REPLY_FILE, close. Prints "ready" once listening.
With "touch", a status query's proof is given first, as a real daemon as USER would give it: the
socket's times are set to the query's "touch" (which only root or the socket's owner can do).
Python rather than Deno: Deno can neither change its uid nor listen after binding.
"""
import json
import os
import pwd
import socket
import sys


def prove(path: str, request: bytes) -> None:
    try:
        ms = int(json.loads(request)["touch"])
        os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))
    except (ValueError, KeyError, TypeError, OSError):
        pass


def main() -> None:
    path, user, reply_file, record_file = sys.argv[1:5]
    touch = sys.argv[5:] == ["touch"]
    with open(reply_file, "rb") as f:
        reply = f.read()
    pw = pwd.getpwnam(user)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    record = open(record_file, "a", buffering=1)
    if os.getuid() == 0 and pw.pw_uid != 0:
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    s.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        conn.settimeout(2)
        got = 0
        data = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += len(chunk)
                data = (data + chunk)[:4096]
        except OSError:
            pass
        record.write(f"{got}\n")
        if touch:
            prove(path, data)
        try:
            conn.sendall(reply)
        except OSError:
            pass
        conn.close()


if __name__ == "__main__":
    main()
