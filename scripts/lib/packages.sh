# Sourced by scripts/setup-build.sh and scripts/setup.sh: installs the distribution packages that
# are missing, with apt-get (Debian, Ubuntu) or dnf (Fedora, RHEL).
#   install_packages "DEBIAN PACKAGES" "FEDORA PACKAGES"

install_packages() {
  if command -v apt-get >/dev/null 2>&1; then
    missing=""
    for p in $1; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
    done
    [ -n "$missing" ] || return 0
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  elif command -v dnf >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    dnf install -y -q $2
  else
    echo "setup: neither apt-get nor dnf found; install the packages listed in README.md by hand" >&2
    exit 1
  fi
}
