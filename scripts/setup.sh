#!/bin/sh
# One-time machine set-up for building and testing pam_mapi (Debian 12 or Fedora/RHEL, as root):
# the C toolchain and PAM headers, the PAM test tools, the programs the end-to-end tests drive,
# the man page linter, the package build and lint tools, systemd-analyze (tests/packaging checks
# the unit with it; systemd need not run), adduser (the .deb depends on it), and Deno 2.9.6 from
# npm. Safe to run again: it installs only what is missing.
set -eu

DEB_PACKAGES="gcc make libc6-dev libpam0g-dev pamtester libpam-wrapper libpam-modules \
  ca-certificates openssl curl python3 util-linux procps psmisc strace time clang-14 \
  libclang-rt-14-dev mandoc build-essential debhelper dpkg-dev fakeroot lintian rpm rpmlint \
  sasl2-bin libsasl2-modules postfix swaks systemd adduser"

if command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $DEB_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Postfix asks how to set up the system's mail: "No configuration" writes no main.cf, so no
    # system Postfix starts (the tests run their own instance on a free loopback port).
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
elif command -v dnf >/dev/null 2>&1; then
  dnf install -y -q gcc make glibc-devel pam-devel pamtester pam_wrapper openssl curl python3 time \
    util-linux procps-ng psmisc strace clang compiler-rt mandoc rpm-build rpmlint \
    cyrus-sasl cyrus-sasl-plain postfix swaks systemd
else
  echo "setup: neither apt-get nor dnf found; install the packages listed in README.md by hand" >&2
  exit 1
fi

if ! deno --version 2>/dev/null | grep -q '^deno 2\.9\.6 '; then
  echo "setup: installing deno 2.9.6 from npm"
  npm install -g --no-fund --no-audit deno@2.9.6 >/dev/null
fi
# npm's postinstall links the native binary; the Node wrapper it falls back to costs 60 ms per login.
if ! head -c 4 "$(readlink -f "$(command -v deno)")" | grep -q 'ELF'; then
  echo "setup: warning: $(command -v deno) is not the native deno binary (npm scripts disabled?)" >&2
fi
