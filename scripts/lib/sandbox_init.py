# PID 1 of a sandbox (scripts/lib/sandbox.ts), started inside its private mount and PID namespaces
# after the bind mounts are in place: python3 sandbox_init.py LOGFILE
#
# * Owns /dev/log (on the sandbox's private /dev): every datagram becomes one line of LOGFILE.
# * Reaps every process that ends up as its child (daemons started in the sandbox detach to it).
# * Reads commands on stdin: "sync TOKEN" writes out every datagram already queued, then answers
#   "synced TOKEN" on stdout. End of stdin (the controller closed it, or died) ends this process,
#   and with it, by the kernel's rule for PID namespaces, every process still in the sandbox.
import os
import select
import signal
import socket
import sys


def reap(_signum, _frame):
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


signal.signal(signal.SIGCHLD, reap)

log = open(sys.argv[1], "ab", buffering=0)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if os.path.lexists("/dev/log"):
    os.unlink("/dev/log")
sock.bind("/dev/log")
os.chmod("/dev/log", 0o666)
sock.setblocking(False)


def drain():
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        log.write(data.rstrip(b"\0").replace(b"\n", b"\\n") + b"\n")


print("ready", flush=True)
stdin = sys.stdin.buffer.raw
pending = b""
while True:
    # Also reap every 0.2 s, in case a SIGCHLD was merged with another one or came in between.
    readable, _, _ = select.select([sock, stdin], [], [], 0.2)
    reap(None, None)
    if sock in readable:
        drain()
    if stdin in readable:
        chunk = os.read(stdin.fileno(), 4096)
        if not chunk:
            drain()
            sys.exit(0)
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.startswith(b"sync "):
                drain()
                sys.stdout.write("synced " + line[5:].decode() + "\n")
                sys.stdout.flush()
