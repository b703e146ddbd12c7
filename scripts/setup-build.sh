#!/bin/sh
# Build-only set-up (Debian 12 or 13, Ubuntu, or Fedora/RHEL, as root, with Node.js and npm): what
# `deno task build` and `sh packaging/build-packages.sh` need and nothing else, that is the C
# compiler and libc headers, PAM's headers, make, the package build tools and linters, and Deno
# 2.9.6 from npm. No mail server and no test tools: scripts/setup.sh runs this and adds those.
# Safe to run again: it installs only what is missing.
set -eu
here=$(dirname "$0")
. "$here/lib/packages.sh"
. "$here/lib/tls_hint.sh"

# build-essential: dpkg-buildpackage checks it for every build. debhelper, dpkg-dev and fakeroot
# make the .deb, rpm brings rpmbuild for the .rpm (file and elfutils: its find-debuginfo and
# brp-strip use file and eu-strip, which Debian's rpm does not depend on; from Debian 13 it
# makes a debuginfo package, empty without them), and libpam-modules' file list tells
# packaging/debian/rules where PAM modules go. ca-certificates: the system's CA bundle, which the
# helper trusts for https:// without cafile= (npm and Deno use their own built-in roots, plus
# NODE_EXTRA_CA_CERTS: tls_hint). lintian and rpmlint: build-packages.sh checks what it built
# with them (an error fails the build), so that a build machine sees what a release's linter says.
DEB_BUILD="gcc make libc6-dev libpam0g-dev libpam-modules build-essential debhelper dpkg-dev \
  fakeroot rpm file elfutils ca-certificates lintian rpmlint"
RPM_BUILD="gcc make glibc-devel pam-devel rpm-build ca-certificates rpmlint"

install_packages "$DEB_BUILD" "$RPM_BUILD"

if ! deno --version 2>/dev/null | grep -q '^deno 2\.9\.6 '; then
  command -v npm >/dev/null 2>&1 ||
    { echo "setup: no npm to install deno 2.9.6 with: install Node.js and npm first" >&2; exit 1; }
  echo "setup: installing deno 2.9.6 from npm"
  npm_log=$(mktemp)
  if ! npm install -g --no-fund --no-audit deno@2.9.6 >/dev/null 2>"$npm_log"; then
    cat "$npm_log" >&2
    tls_hint "$npm_log" setup
    rm -f "$npm_log"
    exit 1
  fi
  cat "$npm_log" >&2
  # npm 11 warns about every install script it has not been told to allow.
  if grep -q 'install-scripts' "$npm_log"; then
    echo "setup: npm's install-scripts warning is about deno's postinstall (node ./install.cjs)," \
      "which only links the native deno binary into place and downloads nothing" >&2
  fi
  rm -f "$npm_log"
fi
# npm's postinstall links the native binary; the Node wrapper it falls back to costs 60 ms per login.
if ! head -c 4 "$(readlink -f "$(command -v deno)")" | grep -q 'ELF'; then
  echo "setup: warning: $(command -v deno) is not the native deno binary (npm scripts disabled?)" >&2
fi

# Deno fetches from the npm registry itself (the build's esbuild, for `deno bundle`; the tests'
# XML parser, pinned in deno.lock): fetch deno.lock's now, so that a TLS-intercepting proxy shows
# up here, with its remedy, rather than in the first build.
deno_log=$(mktemp)
if ! (cd "$here/.." && deno install --frozen) >"$deno_log" 2>&1; then
  cat "$deno_log" >&2
  tls_hint "$deno_log" setup
  rm -f "$deno_log"
  echo "setup: deno could not fetch the npm packages of deno.lock" >&2
  exit 1
fi
rm -f "$deno_log"
