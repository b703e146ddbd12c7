// `pam_mapi_helper --help`. The README and the man pages quote this text: keep it true to the code.
import { DEFAULT_SOCKET, DEFAULT_TIMEOUT, FEATURES, MAX_SOCKETS } from "../pam/args.ts";
import { MAX_IN_PROGRESS } from "../daemon/serve_conn.ts";
import { DEFAULT_DAEMON_SOCKET, SERVICE_ACCOUNT } from "../daemon/trust.ts";

export const HELP = `Usage:
  pam_mapi_helper check [--json] USER [MODULE-ARGS...]
  pam_mapi_helper --pam
  pam_mapi_helper serve [--socket PATH] [--socket-mode MODE]
  pam_mapi_helper status [--socket PATH] [--json]
  pam_mapi_helper --help | --version

Verifies a user name and password against a Kopano or Zarafa server over its SOAP protocol.
pam_mapi.so runs it with --pam for every login, or asks the resident one ("serve"); run "check"
by hand to see what the module does.

check USER [MODULE-ARGS...]
  Takes the same arguments as the pam_mapi.so line in /etc/pam.d, reads the password from the
  terminal without echo (or the first line of standard input when it is not a terminal), runs the
  same code as the module and prints each step: the socket tried, TLS, the server version, the
  logon answer, the user's enabled and disabled features, the decision and the PAM result.
  --json    print the same as one JSON object
  Exit status: 0 PAM_SUCCESS, 1 PAM_AUTH_ERR (wrong password, unknown user, feature not
  enabled), 2 PAM_AUTHINFO_UNAVAIL (no server gave an answer), 3 anything else (bad arguments,
  PAM_IGNORE, setup error).

--pam
  Module mode: reads one JSON request on standard input and writes one JSON reply on standard
  output (docs/protocol.md, version 1); it never prompts. Not meant to be run by hand.

serve [--socket PATH] [--socket-mode 0600|0660|0666]
  The resident helper: listens on a UNIX socket (default ${DEFAULT_DAEMON_SOCKET}, mode 0600:
  root and ${SERVICE_ACCOUNT} may connect; 0660 adds its group, 0666 everyone)
  and answers each connection as --pam does, keeping connections to the Kopano servers open for
  the next login. pam_mapi.so uses it when it can trust it (daemon=); otherwise it starts a helper
  per login. Runs as root or ${SERVICE_ACCOUNT}, below directories that only they can write, sticky
  or not (never /tmp); refuses to start otherwise, or when the socket path is in use.
  Handles ${MAX_IN_PROGRESS} logins at once; beyond that it answers PAM_AUTHINFO_UNAVAIL at once.
  Caches no password and no result. Logs to standard error. On SIGTERM or SIGINT it removes its
  socket first (new logins start the helper), answers the logins in progress and those waiting on
  the socket, and exits.

status [--socket PATH] [--json]
  Whether pam_mapi.so would hand logins to the daemon on that socket: the trust check step by
  step (directories, socket, the daemon's identity), then the daemon's version, uptime, logins
  by result, requests in progress and refused, recent latency, open Kopano connections, memory.
  What the daemon reports is shown with control and invisible characters escaped (\\x1b).
  --json    print the same as one JSON object (ASCII only)
  Exit status: 0 a trusted daemon answers, 1 pam_mapi.so would refuse the daemon (every login
  would fail), 2 no daemon answers (pam_mapi.so starts the helper for each login), 3 anything
  else (bad usage, no or no sensible answer, a reported field of the wrong type, or other status
  queries in the way of its proof of identity every time).

Module arguments:
  socket=URL     server to ask: http://HOST[:PORT]/PATH, https://HOST[:PORT]/PATH or
                 file:///PATH/TO/SOCKET (HTTP over a UNIX socket). Up to ${MAX_SOCKETS}, tried in
                 order; the next one only when the previous gave no answer (connect failure,
                 timeout, TLS failure, HTTP error or SOAP fault, unreadable reply, unexpected error
                 code, a file:// server too old to trust, see below). An accepted or refused
                 logon ends the search. Ports default to 80 and 443.
                 Default: ${DEFAULT_SOCKET}
  service=NAME[|NAME...]
                 after the logon, require that at least one of these features is enabled for the
                 user (not in the server's effective disabled list; case-insensitive). Names:
                 ${FEATURES.join(", ")}. A feature the server lists nowhere is not enabled;
                 lists that cannot be read are no answer. Without it, no feature is checked.
  timeout=SECONDS
                 time limit for one server (connect, TLS and every call), 1-300. Default: ${DEFAULT_TIMEOUT}
  cafile=PATH    PEM file of the CA certificates trusted for https:// sockets, and the only ones
                 (default: the system bundle, /etc/ssl/certs/ca-certificates.crt or
                 /etc/pki/tls/certs/ca-bundle.crt). Certificates and host names are always
                 verified; no client certificate is ever sent.
  quiet          do not log refused logons (wrong password, unknown user)
  debug          log every step at debug priority (never the password)
  ignore_authinfo_unavail
                 answer PAM_IGNORE instead of PAM_AUTHINFO_UNAVAIL when no server gave an answer.
                 Dangerous next to permissive modules: read pam_mapi(8) first.
  try_first_pass, use_first_pass, helper=PATH, daemon=PATH|off
                 read by pam_mapi.so (password handling, helper location, which resident
                 helper to ask, see serve); checked here too.

Every logon asks the server to check the password even over a UNIX socket (NO_UID_AUTH). Over
file:// a server that cannot promise that (older than Zarafa 7.1.1, or not saying its version)
is not trusted: its session is logged off, an error is logged, and the result is
PAM_AUTHINFO_UNAVAIL unless a later socket= gives an answer.
`;
