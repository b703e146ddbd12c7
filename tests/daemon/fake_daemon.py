#!/usr/bin/python3
"""A fake resident helper for trust tests (a test double, run by tests/daemon/lib.ts).

usage: fake_daemon.py SOCKET USER REPLY_FILE RECORD_FILE

Binds SOCKET as the calling user (root: the socket is then root-owned in a trusted directory),
makes it connectable by anyone, becomes USER (when started as root), and only then listens, so
that a client's SO_PEERCRED names USER. Every connection: read to end of stream (or 2 s), append the number of
bytes received to RECORD_FILE, send the bytes of REPLY_FILE, close. Prints "ready" once listening.
Python rather than Deno: Deno can neither change its uid nor listen after binding.
"""
import os
import pwd
import socket
import sys


def main() -> None:
    path, user, reply_file, record_file = sys.argv[1:5]
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
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += len(chunk)
        except OSError:
            pass
        record.write(f"{got}\n")
        try:
            conn.sendall(reply)
        except OSError:
            pass
        conn.close()


if __name__ == "__main__":
    main()
