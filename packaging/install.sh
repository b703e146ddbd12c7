#!/bin/sh
# Installs what `deno task build` wrote to dist/, and the man pages, under DESTDIR:
#   MODULEDIR/pam_mapi.so                    the PAM module
#   LIBEXECDIR/pam_mapi_helper               the helper: a deno compile executable, or the launcher
#                                            of the bundle (shim/launcher.c)
#   SHAREDIR/pam_mapi_helper.js              the bundle (0644), only with the launcher
#   SHAREDIR/pam_mapi_helper_pam.js          the bundle the launcher runs for --pam, same condition
#   LIBEXECDIR/deno                          the Deno runtime, same condition
#   CACHEDIR                                 Deno's code cache (written by root), same condition
#   MANDIR/man8/pam_mapi.8, pam_mapi_helper.8
# It edits no PAM configuration. packaging/debian/rules and packaging/rpm/pam_mapi.spec use it;
# by hand, from the top of a checkout, as root:
#   PAM_MAPI_DENO=/usr/libexec/pam_mapi/deno PAM_MAPI_BUNDLE=/usr/share/pam_mapi/pam_mapi_helper.js \
#     PAM_MAPI_CACHE_DIR=/var/cache/pam_mapi deno task build
#   sh packaging/install.sh
# Settings (environment): DESTDIR (""), MODULEDIR (the directory holding pam_unix.so),
# LIBEXECDIR (/usr/libexec/pam_mapi), SHAREDIR (/usr/share/pam_mapi: the bundle is the same on
# every architecture, and not executable), CACHEDIR (/var/cache/pam_mapi), MANDIR (/usr/share/man),
# LICENSEDIR (where Deno's license goes with the runtime, /usr/share/doc/pam_mapi; empty: not
# installed), DENO_BIN (the runtime to install: the native deno binary behind `deno` on PATH),
# DENO_LICENSE (its LICENSE file: next to DENO_BIN).
set -eu
cd "$(dirname "$0")/.."

DESTDIR=${DESTDIR-}
LIBEXECDIR=${LIBEXECDIR:-/usr/libexec/pam_mapi}
SHAREDIR=${SHAREDIR:-/usr/share/pam_mapi}
CACHEDIR=${CACHEDIR:-/var/cache/pam_mapi}
MANDIR=${MANDIR:-/usr/share/man}
LICENSEDIR=${LICENSEDIR-/usr/share/doc/pam_mapi}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

if [ -z "${MODULEDIR:-}" ]; then
  for d in /lib/x86_64-linux-gnu/security /lib/aarch64-linux-gnu/security /usr/lib64/security \
    /lib64/security /usr/lib/security /lib/security; do
    if [ -e "$d/pam_unix.so" ]; then MODULEDIR=$d; break; fi
  done
  [ -n "${MODULEDIR:-}" ] || die "cannot find the PAM module directory (pam_unix.so); set MODULEDIR"
fi

module=dist/pam_mapi.so
helper=dist/pam_mapi_helper
[ -f "$module" ] && [ -f "$helper" ] || die "run 'deno task build' first (no $module or $helper)"

# The module starts the helper at a path compiled into it (HELPER_PATH): it must be this one.
grep -qaF "$LIBEXECDIR/pam_mapi_helper" "$module" ||
  die "$module does not start $LIBEXECDIR/pam_mapi_helper; build it with PAM_MAPI_HELPER_PATH=$LIBEXECDIR/pam_mapi_helper"

bundle=false
if [ -f dist/pam_mapi_helper.js ]; then
  bundle=true
  # The launcher has the deno it runs, the bundle and the cache compiled in: they must be the
  # installed ones.
  info=$("$helper" --launcher-info) || die "$helper is not the bundle's launcher"
  want="deno=$LIBEXECDIR/deno
bundle=$SHAREDIR/pam_mapi_helper.js
pam_bundle=$SHAREDIR/pam_mapi_helper_pam.js
cache=$CACHEDIR"
  if [ "$(printf '%s\n' "$info" | head -n 4)" != "$want" ]; then
    die "$helper is built for other locations ($(printf '%s\n' "$info" | head -n 4 | tr '\n' ' '));" \
      "build it with PAM_MAPI_DENO=$LIBEXECDIR/deno PAM_MAPI_BUNDLE=$SHAREDIR/pam_mapi_helper.js" \
      "PAM_MAPI_CACHE_DIR=$CACHEDIR deno task build"
  fi
  is_elf() { [ "$(head -c 4 "$1" | tail -c 3)" = "ELF" ]; }
  if [ -z "${DENO_BIN:-}" ]; then
    DENO_BIN=$(command -v deno) || die "no deno on PATH to install as $LIBEXECDIR/deno; set DENO_BIN"
    DENO_BIN=$(readlink -f "$DENO_BIN")
    # When npm did not run deno's install script, `deno` is a Node wrapper (bin.cjs); the native
    # binary is then in the platform package beside it.
    if ! is_elf "$DENO_BIN"; then
      for f in "$(dirname "$DENO_BIN")"/node_modules/@deno/*/deno; do
        if [ -f "$f" ] && is_elf "$f"; then DENO_BIN=$f; break; fi
      done
    fi
  fi
  is_elf "$DENO_BIN" || die "$DENO_BIN is not the native deno binary; set DENO_BIN to it"
  [ -f dist/pam_mapi_helper_pam.js ] || die "no dist/pam_mapi_helper_pam.js: run 'deno task build'"
  # The runtime must run this bundle.
  "$DENO_BIN" run --no-config --no-lock --no-prompt dist/pam_mapi_helper.js --version >/dev/null ||
    die "$DENO_BIN cannot run dist/pam_mapi_helper.js"
  if [ -z "${DENO_LICENSE:-}" ]; then
    # The npm package "deno" has it beside its binary; the platform package has none.
    for f in "$(dirname "$DENO_BIN")/LICENSE" "$(dirname "$DENO_BIN")/../../../LICENSE"; do
      if [ -f "$f" ]; then DENO_LICENSE=$f; break; fi
    done
  fi
  DENO_LICENSE=${DENO_LICENSE:-$(dirname "$DENO_BIN")/LICENSE}
  if [ -n "$LICENSEDIR" ] && [ ! -f "$DENO_LICENSE" ]; then
    die "no license file for $DENO_BIN at $DENO_LICENSE; set DENO_LICENSE"
  fi
fi

install -d "$DESTDIR$MODULEDIR" "$DESTDIR$LIBEXECDIR" "$DESTDIR$MANDIR/man8"
install -m 0755 "$module" "$DESTDIR$MODULEDIR/pam_mapi.so"
install -m 0755 "$helper" "$DESTDIR$LIBEXECDIR/pam_mapi_helper"
install -m 0644 man/pam_mapi.8 man/pam_mapi_helper.8 "$DESTDIR$MANDIR/man8/"
if $bundle; then
  install -d "$DESTDIR$SHAREDIR"
  install -m 0644 dist/pam_mapi_helper.js "$DESTDIR$SHAREDIR/pam_mapi_helper.js"
  install -m 0644 dist/pam_mapi_helper_pam.js "$DESTDIR$SHAREDIR/pam_mapi_helper_pam.js"
  install -m 0755 "$DENO_BIN" "$DESTDIR$LIBEXECDIR/deno"
  install -d -m 0755 "$DESTDIR$CACHEDIR"
  if [ -n "$LICENSEDIR" ]; then
    install -d "$DESTDIR$LICENSEDIR"
    install -m 0644 "$DENO_LICENSE" "$DESTDIR$LICENSEDIR/deno-LICENSE"
  fi
  echo "install.sh: installed the module, the helper (a bundle that its launcher runs on $LIBEXECDIR/deno) and the man pages"
else
  echo "install.sh: installed the module, the helper (a standalone executable) and the man pages"
fi
