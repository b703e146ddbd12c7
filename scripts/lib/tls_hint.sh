# Sourced by scripts/setup-build.sh and packaging/build-packages.sh.
#   tls_hint LOG WHO
# When LOG shows that a server's TLS certificate was not trusted (npm: SELF_SIGNED_CERT_IN_CHAIN,
# UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...; Deno: invalid peer certificate: UnknownIssuer), says what
# works behind a TLS-intercepting proxy: npm and Deno both add the CA certificates of
# NODE_EXTRA_CA_CERTS to their own, for the registry and for Deno's own downloads (README.md,
# Try it).
tls_hint() {
  grep -q -E 'invalid peer certificate|SELF_SIGNED_CERT|UNABLE_TO_(VERIFY_LEAF|GET_ISSUER)' "$1" ||
    return 0
  echo "$2: a server's certificate was not trusted. Behind a TLS-intercepting proxy, name its CA" \
    "certificate (a PEM file) for npm and Deno, then run this again:" >&2
  echo "  export NODE_EXTRA_CA_CERTS=/path/to/proxy-ca.crt     (README.md, Try it)" >&2
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
    echo "$2: (NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS is set, but does not hold that CA)" >&2
  fi
}
