#!/bin/sh
# Runs the README's commands on a fresh Debian root, as a newcomer would: a plain git clone of this
# checkout's HEAD (committed work only) in /srv/pam_mapi (where other users can read it, as the
# tests need; not under /root), nothing else beside it, Node.js, npm and git from the release's
# own apt. As root, on a machine that may run other things: the root is the root of a private
# mount and PID namespace (with its own /proc, /dev/pts and an empty /run; /sys and /dev are the
# machine's), so nothing it mounts or starts outlives it; the systemd container test boots its
# container in there as on a machine of its own.
#
#   sh scripts/fresh-root-check.sh ROOT.tar STEP [DIR]
#
# ROOT.tar   a debootstrap root (e.g. --variant=minbase bookworm or trixie), never changed
# STEP       demo   sh scripts/setup.sh && deno task demo
#            test   sh scripts/setup.sh && deno task test
#            ci     bash .ci/run
#            build  the build-only path: sh scripts/setup-build.sh, sh packaging/build-packages.sh
#                   (linted), apt-get install of the .deb, and logins through the installed module
#                   with pamtester against the Kopano-compatible server; then apt-get purge
#            shell  an interactive shell in the prepared root
# DIR        where to unpack the root (default: a new directory under /var/tmp); it is removed at
#            the end unless KEEP=1 is set
#
# COMMIT names another commit of this repository to clone than HEAD.
# NODE_EXTRA_CA_CERTS, when set, is copied into the root and set there too (behind a
# TLS-intercepting proxy: README.md, Try it); HTTPS_PROXY and HTTP_PROXY are passed on. With
# MACHINE_DAEMON=trap the root's /run/pam_mapi/helper.sock holds a trusted daemon that answers
# PAM_SUCCESS to anything (tests/daemon/fake_daemon.py), as if the machine ran the resident helper:
# the step must pass all the same and the trap must be asked nothing (python3 is installed with
# Node.js for it). Prints the time of each phase; exits with the step's status.
set -eu

# The build step's last part, run inside the root from the clone: install the .deb as an
# administrator would, log in through it, purge it.
installed_login() {
  export DEBIAN_FRONTEND=noninteractive
  deb=$(ls dist/packages/libpam-mapi_*.deb | grep -v dbgsym)
  apt-get install -y -qq "./$deb" >/tmp/install.log 2>&1 || { cat /tmp/install.log; return 1; }
  apt-get install -y -qq --no-install-recommends pamtester >/tmp/install.log 2>&1 ||
    { cat /tmp/install.log; return 1; }
  echo "fresh-root: installed $deb; its unit: $(dpkg -L libpam-mapi | grep 'pam_mapi\.service$')"
  deno task kopano-sim --listen 127.0.0.1:0 >/tmp/sim.log 2>&1 &
  sim=$!
  tries=0
  until url=$(sed -n 's/^listening \(http:[^ ]*\).*/\1/p' /tmp/sim.log) && [ -n "$url" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || { cat /tmp/sim.log; kill "$sim"; return 1; }
    sleep 0.1
  done
  failed=0
  expect() { # WHAT PATTERN USER PASSWORD SOCKET
    printf 'auth required pam_mapi.so socket=%s daemon=off\naccount required pam_mapi.so\n' "$5" \
      >/etc/pam.d/pam_mapi_check
    out=$(printf '%s\n' "$4" | pamtester pam_mapi_check "$3" authenticate acct_mgmt 2>&1) || true
    if printf '%s\n' "$out" | grep -q "$2"; then
      echo "fresh-root: ok   $1: $out"
    else
      echo "fresh-root: FAIL $1: $out"
      failed=1
    fi
  }
  expect "right password" "successfully authenticated" alice secret "$url"
  expect "wrong password" "Authentication failure" alice wrong "$url"
  expect "server down" "cannot retrieve authentication info" alice secret http://127.0.0.1:1/kopano
  kill "$sim"
  apt-get purge -y -qq libpam-mapi >/tmp/install.log 2>&1 || { cat /tmp/install.log; return 1; }
  expect "after apt-get purge" "Module is unknown" alice secret "$url"
  rm -f /etc/pam.d/pam_mapi_check
  return "$failed"
}
if [ "${1:-}" = --installed-login ]; then
  installed_login
  exit
fi

[ "$(id -u)" -eq 0 ] || { echo "fresh-root: run it as root (namespaces, mounts)" >&2; exit 2; }
[ $# -ge 2 ] || { sed -n '/^#   sh scripts/,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
tar=$(readlink -f "$1")
step=$2
case $step in demo | test | ci | build | shell) ;; *) echo "fresh-root: unknown step $step" >&2; exit 2 ;; esac
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse "${COMMIT:-HEAD}^{commit}")
dir=${3:-$(mktemp -d /var/tmp/pam_mapi-root.XXXXXX)}
mkdir -p "$dir"
dir=$(readlink -f "$dir")
[ -z "$(ls -A "$dir")" ] || { echo "fresh-root: $dir is not empty" >&2; exit 2; }
cleanup() { [ "${KEEP:-}" = 1 ] || rm -rf "$dir"; }
trap cleanup EXIT

phase_start=$(date +%s)
phase() { # NAME: prints how long the previous phase took, then starts NAME
  now=$(date +%s)
  [ -z "${phase_name:-}" ] || echo "fresh-root: $phase_name took $((now - phase_start)) s"
  phase_name=$1
  phase_start=$now
  [ -z "$1" ] || echo "fresh-root: == $1"
}

finish() { # STATUS
  phase ""
  echo "fresh-root: $step on ${tar##*/} exited $1"
  exit "$1"
}

phase "unpack $tar into $dir"
tar -C "$dir" -xf "$tar"
# debootstrap writes no /etc/hosts: the tests need localhost.
[ -e "$dir/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
env_in="HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  cp "$NODE_EXTRA_CA_CERTS" "$dir/root/proxy-ca.crt"
  env_in="$env_in NODE_EXTRA_CA_CERTS=/root/proxy-ca.crt"
fi
for v in HTTPS_PROXY HTTP_PROXY https_proxy http_proxy; do
  eval "val=\${$v:-}"
  [ -z "$val" ] || env_in="$env_in $v=$val"
done

phase "git clone of $commit"
git clone -q --no-hardlinks "$repo" "$dir/srv/pam_mapi"
git -C "$dir/srv/pam_mapi" checkout -q --detach "$commit"

# Runs a shell command in the root: the root of a private mount and PID namespace, whose PID 1 is
# that command; when it ends, or when this script is killed (--kill-child), the kernel ends
# whatever it left behind. The root becomes the namespace's own (pivot_root), not a chroot: in a
# chroot the kernel refuses to create user namespaces (a unit's PrivateUsers=), and entering a
# container's mount namespace (nsenter) lands at the machine's root instead of the container's.
inside() { # SHELL-COMMAND
  # shellcheck disable=SC2086
  unshare --mount --propagation private --pid --fork --kill-child sh -eu -c '
    r=$1; shift
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$r/dev/pts"
    mount --bind "$r/dev/pts/ptmx" "$r/dev/ptmx"
    mount -t tmpfs -o mode=0755 tmpfs "$r/run"
    mkdir -p "$r/.oldroot"
    cd "$r"
    pivot_root . .oldroot
    umount -l /.oldroot
    rmdir /.oldroot
    exec "$@"' sh "$dir" /usr/bin/env -i $env_in sh -c "$1"
}

phase "Node.js, npm and git (the newcomer cloned with it) from the release's apt"
inside 'export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends nodejs npm git '"${MACHINE_DAEMON:+python3}"' \
      >/tmp/node.log 2>&1 ||
    { tail -30 /tmp/node.log; exit 1; }
  echo "fresh-root: $(. /etc/os-release; echo "$PRETTY_NAME"), node $(node --version), npm $(npm --version)"' || finish $?

cd_clone='cd /srv/pam_mapi'
# MACHINE_DAEMON=trap: the trap listens while the step runs, and must be asked nothing.
if [ "${MACHINE_DAEMON:-}" = trap ]; then
  printf '{"v":1,"result":"PAM_SUCCESS","log":[]}' >"$dir/root/trap.reply"
  cd_clone="$cd_clone"' && mkdir -m 0755 /run/pam_mapi && : >/root/trap.out &&
    { python3 tests/daemon/fake_daemon.py /run/pam_mapi/helper.sock root /root/trap.reply \
        /root/trap.record >/root/trap.out 2>&1 & } &&
    trap_pid=$! &&
    trap_report() {
      status=$?
      asked=$(cat /root/trap.record 2>/dev/null | wc -l)
      echo "fresh-root: the trap at /run/pam_mapi/helper.sock was asked $asked times"
      kill "$trap_pid"
      [ "$asked" -eq 0 ] || status=1
      exit "$status"
    } &&
    trap trap_report EXIT &&
    until grep -q "^ready$" /root/trap.out; do sleep 0.1; done'
fi
case $step in
demo) phase "sh scripts/setup.sh && deno task demo"; cmd="$cd_clone && sh scripts/setup.sh && deno task demo" ;;
test) phase "sh scripts/setup.sh && deno task test"; cmd="$cd_clone && sh scripts/setup.sh && deno task test" ;;
ci) phase "bash .ci/run"; cmd="$cd_clone && bash .ci/run" ;;
shell) phase "shell"; cmd="$cd_clone && exec bash -i" ;;
build)
  phase "sh scripts/setup-build.sh && sh packaging/build-packages.sh"
  inside "$cd_clone && sh scripts/setup-build.sh && sh packaging/build-packages.sh" || finish $?
  phase "apt-get install of the .deb, then pamtester against the Kopano-compatible server"
  cmd="$cd_clone && sh scripts/fresh-root-check.sh --installed-login"
  ;;
esac
inside "$cmd" || finish $?
finish 0
