#!/bin/sh
# syslog_capture.sh LOGFILE COMMAND [ARG...]   (root)
# Runs COMMAND in a private mount namespace whose /dev is an overlay with our own /dev/log, so that
# every syslog(3)/pam_syslog line COMMAND sends is appended to LOGFILE, one per line, and nothing
# reaches (or needs) the host's syslog. Exit status: COMMAND's.
set -eu
[ "$(id -u)" = 0 ] || { echo "syslog_capture.sh: needs root (mount namespace)" >&2; exit 77; }
log=$1
shift
exec unshare --mount --propagation private /bin/sh -eu -c '
  log=$1; shift
  work=$(mktemp -d)
  trap "rm -rf \"\$work\"" EXIT
  mkdir "$work/upper" "$work/work"
  mount -t overlay overlay -o "lowerdir=/dev,upperdir=$work/upper,workdir=$work/work" /dev
  rm -f /dev/log
  python3 -u -c "
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(\"/dev/log\")
os.chmod(\"/dev/log\", 0o666)
out = open(sys.argv[1], \"ab\", buffering=0)
print(\"ready\", flush=True)
while True:
    data = s.recv(65536)
    if data == b\"--stop--\":
        break
    out.write(data.rstrip(b\"\\0\").replace(b\"\\n\", b\"\\\\n\") + b\"\\n\")
" "$log" > "$work/ready" &
  listener=$!
  i=0
  while [ ! -s "$work/ready" ] && [ $i -lt 250 ]; do sleep 0.02; i=$((i + 1)); done
  set +e
  "$@"
  rc=$?
  set -e
  # Datagrams are queued in order: the stop marker arrives after every line the command sent.
  python3 -c "import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b\"--stop--\", \"/dev/log\")"
  wait $listener || true
  exit $rc
' sh "$log" "$@"
