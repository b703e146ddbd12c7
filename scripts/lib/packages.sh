# Sourced by scripts/setup-build.sh and scripts/setup.sh: installs the distribution packages that
# are missing, with apt-get (Debian, Ubuntu) or dnf (Fedora, RHEL).
#   install_packages "DEBIAN PACKAGES" "FEDORA PACKAGES"
# A Debian name ending in "?" is installed where the release has that package and left out where
# it does not (a package that an older release does not split out yet). apt's and dnf's output
# is kept quiet; when a step fails, its log is shown.

# Names are chosen by what the release has, never by its version number: `clang` and
# `libclang-rt-dev` are the release's default LLVM (clang-14 on Debian 12, clang-19 on Debian 13),
# so every tool that names the compiler says `clang`.

# The names of $1 that are not installed; a "name?" only where apt knows the package. (A subshell
# with globbing off: "name?" is a pattern to the shell.)
deb_missing() (
  set -f
  for p in $1; do
    case $p in
    *\?)
      p=${p%\?}
      apt-cache show "$p" >/dev/null 2>&1 || continue
      ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || printf ' %s' "$p"
  done
)

# Runs a command with its output in a log; on failure shows the log's end and says where it is.
quietly() { # WHAT COMMAND...
  quietly_what=$1
  shift
  quietly_log=$(mktemp "${TMPDIR:-/tmp}/pam_mapi-setup.XXXXXX")
  "$@" >"$quietly_log" 2>&1 && quietly_status=0 || quietly_status=$?
  if [ "$quietly_status" -eq 0 ]; then
    rm -f "$quietly_log"
    return 0
  fi
  echo "setup: $quietly_what failed (exit $quietly_status); the end of its output:" >&2
  tail -n 60 "$quietly_log" | sed 's/^/  | /' >&2
  echo "setup: all of it is in $quietly_log" >&2
  return "$quietly_status"
}

install_packages() {
  if command -v apt-get >/dev/null 2>&1; then
    missing=$(deb_missing "$1")
    [ -n "$missing" ] || return 0
    export DEBIAN_FRONTEND=noninteractive
    quietly "apt-get update" apt-get update
    # Again, now that apt knows this release's packages (the optional ones too).
    missing=$(deb_missing "$1")
    [ -n "$missing" ] || return 0
    echo "setup: installing$missing"
    # shellcheck disable=SC2086
    quietly "apt-get install$missing" apt-get install -y -q -o DPkg::Lock::Timeout=600 \
      --no-install-recommends $missing
  elif command -v dnf >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    quietly "dnf install" dnf install -y $2
  else
    echo "setup: neither apt-get nor dnf found; install the packages listed in docs/install.md by hand" >&2
    exit 1
  fi
}
