#!/bin/sh
# One-time machine set-up for building and testing pam_mapi (Debian 12 or 13, Ubuntu, or
# Fedora/RHEL, as root, with Node.js and npm): scripts/setup-build.sh (compiler, PAM headers,
# package build tools, Deno 2.9.6), then what the tests need: the PAM test tools, clang (the
# release's default version, with its sanitizer and fuzzer runtime: lib/packages.sh), the man
# page linter, systemd-analyze (tests/packaging checks the unit with it; systemd need not run),
# adduser (the .deb depends on it, and dpkg -i does not fetch it), the saslauthd, Postfix and
# swaks the end-to-end tests drive, and debootstrap and systemd-nspawn (systemd-container), with
# which tests/packaging boots the package under a real systemd. Safe to run again: it installs
# only what is missing.
set -eu
here=$(dirname "$0")
sh "$here/setup-build.sh"
. "$here/lib/packages.sh"

DEB_TEST="pamtester libpam-wrapper openssl curl python3 util-linux procps psmisc \
  strace time clang libclang-rt-dev? mandoc sasl2-bin libsasl2-modules \
  postfix swaks systemd adduser debootstrap systemd-container"
RPM_TEST="pamtester pam_wrapper openssl curl python3 time util-linux procps-ng psmisc strace clang \
  compiler-rt mandoc cyrus-sasl cyrus-sasl-plain postfix swaks systemd"

# Postfix asks how to set up the system's mail: "No configuration" writes no main.cf, so no system
# Postfix starts (the tests run their own instance on a free loopback port). Only before Postfix
# is installed: an installed one keeps its administrator's answer.
if command -v debconf-set-selections >/dev/null 2>&1 &&
  ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'ok installed'; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi
install_packages "$DEB_TEST" "$RPM_TEST"

# The tests run parts of the checkout as other users (nobody, daemon, pam_mapi): every directory
# above it must let them through, which /root (mode 0700 on Debian) does not.
dir=$(cd "$here/.." && pwd -P)
while :; do
  mode=$(stat -c %a "$dir")
  if [ $((0$mode & 1)) -eq 0 ]; then
    echo "setup: warning: other users cannot get through $dir (mode $mode), and the tests run" \
      "parts of this checkout as nobody: they would fail. Clone it where others can read it," \
      "e.g. /srv/pam_mapi (README.md, Try it)" >&2
    break
  fi
  [ "$dir" != / ] || break
  dir=$(dirname "$dir")
done
