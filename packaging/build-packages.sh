#!/bin/sh
# Builds the Debian package (libpam-mapi) and the RPM (pam_mapi) into dist/packages/, then lints
# them: lintian and rpmlint must report no errors; their warnings are printed. The linters come
# with the build set-up (scripts/setup-build.sh); without one, that package is built and not linted.
#   sh packaging/build-packages.sh [deb] [rpm]        (default: those whose tools are installed)
# Each is built in a copy of the source tree (the files git tracks or would track), so the
# checkout stays clean: dpkg-buildpackage -us -uc -b with packaging/debian as debian/, and
# rpmbuild -bb --build-in-place packaging/rpm/pam_mapi.spec. Needs deno 2.9.6 and the packaging
# tools (scripts/setup-build.sh installs both). .ci/run calls it before the tests, which then
# install the .deb (tests/packaging/).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
out=$top/dist/packages
# Without arguments: each kind whose tool is installed (Debian: both, via setup-build.sh; Fedora:
# rpm).
kinds=$*
if [ -z "$kinds" ]; then
  command -v dpkg-buildpackage >/dev/null && kinds=deb
  command -v rpmbuild >/dev/null && kinds="$kinds rpm"
  [ -n "$kinds" ] || { echo "packages: neither dpkg-buildpackage nor rpmbuild (run scripts/setup-build.sh)" >&2; exit 1; }
  case $kinds in *deb*) ;; *) echo "packages: no dpkg-buildpackage: not building the .deb" ;; esac
  case $kinds in *rpm*) ;; *) echo "packages: no rpmbuild: not building the .rpm" ;; esac
fi
packager="pam_mapi maintainers <maintainers@users.noreply.r-seed-ecb36654.example>"

work=$(mktemp -d "${TMPDIR:-/tmp}/pam_mapi_pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A copy of the source tree: what git tracks plus new files it does not ignore; without git,
# everything but build output.
copy_tree() {
  mkdir -p "$1"
  if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    # (a tracked file deleted in the work tree is left out, as a commit would leave it out)
    git -C "$top" ls-files --cached --others --exclude-standard | sort -u |
      while IFS= read -r f; do
        if [ -e "$top/$f" ] || [ -L "$top/$f" ]; then printf '%s\0' "$f"; fi
      done | (cd "$top" && xargs -0 cp -P --parents -t "$1")
  else
    tar -C "$top" --exclude=./dist --exclude=./shim/build --exclude=./.git \
      --exclude=./node_modules --exclude=./debian -cf - . | tar -C "$1" -xf -
  fi
}

. scripts/lib/tls_hint.sh

# A failed build: the end of its log, and the likely cause where one is known.
build_failed() { # LOG TOOL
  tail -40 "$1" >&2
  tls_hint "$1" packages
  echo "packages: $2 failed" >&2
  exit 1
}

mkdir -p "$out"
status=0
for kind in $kinds; do
  case $kind in
  deb)
    command -v dpkg-buildpackage >/dev/null || { echo "packages: no dpkg-buildpackage" >&2; exit 1; }
    rm -f "$out"/libpam-mapi*.deb "$out"/libpam-mapi_*.changes "$out"/libpam-mapi_*.buildinfo
    copy_tree "$work/deb/src"
    ln -s packaging/debian "$work/deb/src/debian"
    echo "packages: dpkg-buildpackage -us -uc -b"
    (cd "$work/deb/src" && dpkg-buildpackage -us -uc -b) >"$work/deb.log" 2>&1 ||
      build_failed "$work/deb.log" dpkg-buildpackage
    grep '^build:' "$work/deb.log" || true # which helper: compiled, or the bundle
    cp "$work"/deb/*.deb "$work"/deb/*.changes "$work"/deb/*.buildinfo "$out/"
    if ! command -v lintian >/dev/null; then
      echo "packages: no lintian (scripts/setup-build.sh installs it): the .deb is not linted"
      continue
    fi
    echo "packages: lintian (errors fail the build; overrides in packaging/debian/*.lintian-overrides)"
    changes=$(ls "$out"/libpam-mapi_*.changes)
    # --show-overrides lists what was overridden, but lintian then also fails on an overridden
    # error: judge by the E: lines instead (a lintian that cannot run exits non-zero here).
    lintian --fail-on none --show-overrides "$changes" >"$work/lintian.log" 2>&1 ||
      { cat "$work/lintian.log" >&2; echo "packages: lintian did not run" >&2; exit 1; }
    grep -v '^running with root privileges' "$work/lintian.log" | sed 's/^/  /' || true
    if grep -q '^E:' "$work/lintian.log"; then echo "packages: lintian found errors" >&2; status=1; fi
    echo "packages: lintian: $(grep -c '^E:' "$work/lintian.log" || true) errors," \
      "$(grep -c '^W:' "$work/lintian.log" || true) warnings," \
      "$(grep -c '^O:' "$work/lintian.log" || true) overridden"
    ;;
  rpm)
    command -v rpmbuild >/dev/null || { echo "packages: no rpmbuild" >&2; exit 1; }
    rm -f "$out"/pam_mapi-*.rpm
    copy_tree "$work/rpm/src"
    # Where rpm has no package database (Debian), BuildRequires cannot be checked.
    nodeps=
    rpm -q rpm >/dev/null 2>&1 || nodeps=--nodeps
    echo "packages: rpmbuild -bb --build-in-place $nodeps packaging/rpm/pam_mapi.spec"
    (cd "$work/rpm/src" && rpmbuild -bb --build-in-place $nodeps \
      --define "_topdir $work/rpm/top" --define "packager $packager" \
      packaging/rpm/pam_mapi.spec) >"$work/rpm.log" 2>&1 ||
      build_failed "$work/rpm.log" rpmbuild
    find "$work/rpm/top/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
    if ! command -v rpmlint >/dev/null; then
      echo "packages: no rpmlint (scripts/setup-build.sh installs it): the .rpm is not linted"
      continue
    fi
    echo "packages: rpmlint (errors fail the build; filters in packaging/rpm/pam_mapi.rpmlintrc:" \
      "$(grep -c '^addFilter' packaging/rpm/pam_mapi.rpmlintrc), in pam_mapi.rpmlint.toml:" \
      "$(grep -c '^    "' packaging/rpm/pam_mapi.rpmlint.toml))"
    if rpmlint -c packaging/rpm/pam_mapi.rpmlint.toml -r packaging/rpm/pam_mapi.rpmlintrc \
      "$out"/pam_mapi-*.rpm >"$work/rpmlint.log" 2>&1; then
      :
    else
      echo "packages: rpmlint found errors" >&2
      status=1
    fi
    grep -E '^[^ ]+: [EW]: |checked;' "$work/rpmlint.log" | sed 's/^/  /'
    ;;
  *)
    echo "usage: sh packaging/build-packages.sh [deb] [rpm]" >&2
    exit 2
    ;;
  esac
done
echo "packages: in dist/packages:"
for f in "$out"/*; do printf '  %s (%s bytes)\n' "${f##*/}" "$(wc -c <"$f")"; done
exit $status
