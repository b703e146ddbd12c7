/**
 * kopano_sim: a Kopano/Zarafa storage server stand-in for tests (a test double, not product code).
 *
 * It speaks the server's SOAP-over-HTTP protocol byte-compatibly with the genuine kopano-server
 * 11.0.2 and 8.7.85 exchanges in tests/fixtures/ (replayed by tests/sim/fidelity_test.ts and
 * fidelity_8_7_test.ts against the sim started as that version), serves logon, logoff, getUser
 * and resolveUsername with the server's semantics, and reproduces the older Zarafa/Kopano
 * generations selected by `version`. Everything else is a fault
 * ("Method 'ns:X' not implemented"), as a server without that method would answer.
 *
 * ## API (stable: other tests code against it)
 *
 * ```ts
 * import { startKopanoSim } from "./mod.ts";
 * await using sim = await startKopanoSim({ listen: ["127.0.0.1:0"], unix: `${dir}/server.sock` });
 * sim.urls;            // { http: ["http://127.0.0.1:41234/kopano"], https: [], unix: ["file:///tmp/…/server.sock"] }
 * sim.openSessions();  // sessions currently logged on (assert 0 after a client run)
 * sim.sessions();      // [{ id, user, origin, transport, method: "password"|"socket", capabilities }]
 * sim.requests;        // every request received, see SimRequest (live array, oldest first)
 * sim.connections();   // every connection accepted, see SimConnectionInfo (live, oldest first)
 * sim.connectionStats(); // { accepted: {tcp, tls, unix}, tlsHandshakes, open }: exact totals
 * sim.clearRequests(); sim.serverGuid; sim.version;
 * await sim.setFaults([{ kind: "delay", value: 200, method: "getUser", times: 1 }]);
 * await sim.clearFaults();  // the promises matter for "refuse"; a bad fault throws at once
 * await sim.close();   // closes listeners and connections; no timers or resources left
 * ```
 *
 * `startKopanoSim(options)` takes KopanoSimOptions: `listen` (TCP "HOST:PORT" list; port 0
 * allowed; default ["127.0.0.1:0"] when no listener is given), `unix` (socket path), `tls`
 * ({listen, certFile, keyFile}), `users` (SimUser[]), `disabledFeatures` (default "imap pop3"),
 * `version` (default "11.0.2"), `unixPeer`, `unixOrigin`, `sessionTimeoutMs` (300 000),
 * `idleTimeoutMs` (5 000), `readTimeoutMs` (60 000), `maxBodyBytes` (4 MiB), `faults`,
 * `maxLoggedRequests` (10 000; also bounds `connections()`), `log` (a line per request).
 *
 * A SimRequest records transport ("tcp"|"tls"|"unix"), connection number, peer, httpMethod,
 * path, httpVersion, headers (lower-case names), rawBody, the SOAP `method` ("logon", ...),
 * `params` (text of each child element of the method element, first occurrence), `elements` (all
 * child tags in order: assert e.g. that szImpersonateUser is absent), the reply `status` and an
 * `outcome` ("reply", "fault: …", "dropped: …", "injected: KIND").
 *
 * A SimConnectionInfo records id (SimRequest.connection), transport, opened/closed times, the
 * number of requests it carried, whether its TLS handshake completed, and `closedBy`: "client",
 * "idle", "read timeout", "connection: close", "tls handshake failed", "dropped: …", "fault: KIND",
 * "write failed" or "sim". A connection closed by the "reset" fault is not recorded.
 *
 * Users (`SimUser`, also the JSON array `--users FILE` takes): `{name, password, enabled?,
 * disabled?, admin?, active?, id?, fullName?, email?}`. Defaults: alice/secret (id 3),
 * bob/bobpass (id 4; imap enabled, pop3 disabled), kadmin/adminpass (id 5, admin): the 11.0.2
 * captures' users. CAPTURED_USERS adds those of the 8.7.85 captures: carol (password
 * `p&<ss>"'w]]>rd`), dave (`pässwörd€ ok`), erin@example.com/erinpass. SYSTEM (id 1)
 * always exists and never logs on with a password. Names match case-insensitively.
 * Feature lists in getUser are the server's merge of `disabledFeatures` with the user's lists
 * (docs/kopano.md#4-getuser-the-feature-lists-and-logoff), over the feature names the
 * emulated version knows.
 *
 * ## The UNIX-socket peer identity (the security-relevant quirk)
 *
 * kopano-server reads the caller's uid with SO_PEERCRED and, unless the logon sets ulFlags bit
 * 0x1 (NO_UID_AUTH), logs a local admin (local_admin_users, e.g. root) in as any existing user
 * whatever the password (fixtures e1-e5). Deno cannot read peer credentials, so the sim takes
 * the caller's identity from `unixPeer` (CLI --unix-peer), applied to every UNIX client:
 * * "admin" (default): root / a local_admin_users member: peer-credential logon for every user.
 *   This is the dangerous case, as when saslauthd runs as root.
 * * "user": an unprivileged uid: the password is always checked.
 * * "local:NAME": the Unix account NAME (allow_local_users): only the Kopano user NAME.
 * Peer-credential logon needs, as on the real server: the UNIX socket (never TCP/TLS), no
 * NO_UID_AUTH bit (ignored by versions < 7.1.1), a szImpersonateUser element, even empty (not
 * needed by versions < 7.1.4), and an existing user (even an inactive one).
 *
 * ## Sessions and their origin
 *
 * Session ids are random 64-bit decimals (32-bit without LARGE_SESSIONID). A session is bound to
 * where it was created: the peer IP for TCP/TLS (as session_ip_check does), and for the UNIX
 * socket, since the peer pid (the server's "*:pid-N") is unknown, the connection by default
 * (`unixOrigin: "connection"`); `unixOrigin: "socket"` lets every UNIX client share one origin.
 * So over file:// a client must use one connection for logon, getUser and logoff (which it can:
 * UNIX connections are never idle-closed). Unknown, logged-off, expired (`sessionTimeoutMs`
 * without a call) and foreign sessions all answer END_OF_SESSION (2147483664).
 *
 * ## Versions (`version`, CLI --version)
 *
 * 11.0.2+ rejects clients without the UNICODE capability with er 2147483697; 10.0.3-11.0.1 with
 * 2147746051; 8.7.81-10.0.2 with an HTTP 500 fault "Error -2147221245"; older ones accept them.
 * lpszVersion is "0,G,M,m" from 8.5 on, "0,G,M,m,REV" before (REV from "X.Y.Z.REV", default 0).
 * Capabilities, feature names, NO_REGISTER_SESSION (8.5+), failed-logon shape (ZCP: no version,
 * caps 0), compression (ZCP grants it when asked: gzip + chunked replies) follow the release.
 * Below 7.2: unqualified <logonResponse>/<getUserResponse>/<resolveUserResponse>, "Server:
 * gSOAP/2.7" without X-Frame-Options, xsi:type="SOAP-ENC:Array" on arrays, empty strings as
 * <x></x>, no CRLF after the envelope. Below 7.1.1 ulFlags is ignored; below 7.1.4
 * szImpersonateUser is ignored.
 *
 * ## HTTP behaviour
 *
 * POST on any path; Content-Length, chunked, or no framing (the XML end then ends the request);
 * header-less XML; HTTP/1.0 (answered with Connection: close, never chunked); gzip/deflate
 * request bodies; "Expect: 100-continue". GET gets 405 "HTTP GET method not implemented", other
 * methods 405, HEAD/OPTIONS an empty 200. Replies: HTTP/1.1, gSOAP headers, Content-Length, or
 * chunked once the session asked for ENHANCED_ICS (0x100). After a fault, or when the request
 * asked for it, "Connection: close" and the socket is closed. Otherwise a connection serves any
 * number of requests (no "Keep-Alive: max=": kopano-server does not count them). TCP/TLS
 * connections idle for `idleTimeoutMs` are closed, counted from the end of the last reply, or from
 * the accept for a connection that has not sent a request yet (the TLS handshake included); UNIX
 * ones never. kopano-server checks idleness once a second in whole seconds, so it closes between
 * server_recv_timeout and about two seconds later; the sim closes at exactly `idleTimeoutMs`, the
 * earliest, so a client that is safe against the sim is safe against the server. A body that ends inside the envelope gets no reply
 * at all (the connection is closed). Bodies over `maxBodyBytes` close the connection (the real
 * server has no such limit).
 *
 * ## Fault injection (`faults`, setFaults, CLI --fault KIND[=VALUE][@METHOD][*TIMES][+TRANSPORT])
 *
 * Kinds: delay (VALUE ms), hang, drop, close-mid-reply, garbage, oversized (VALUE bytes, default
 * 100 MiB, streamed), http-500, http-503, wrong-content-type (VALUE), raw (`reply`: status,
 * headers, body or verbatim bytes; CLI: raw=FILE with the verbatim bytes), reset (accept, then
 * close), refuse (listeners closed while set; the UNIX path is left as a stale socket so connect
 * gets ECONNREFUSED), close-reused (a connection that already served a request is closed without
 * a reply when its next request starts to arrive: the race of the server's idle close with a
 * client reusing the connection). `method` limits a fault to one SOAP method, `transport` to one transport,
 * `times` to a number of uses. The first matching fault applies. Faults that answer instead of
 * the server (garbage, oversized, http-*, raw, hang, drop) skip the request: no session is made.
 * delay serves after the wait; close-mid-reply and wrong-content-type serve it (a logon then does
 * create a session the client never learns about).
 *
 * ## Not reproduced
 *
 * SOAP 1.2 envelopes (answered with a VersionMismatch fault instead of a SOAP 1.2 reply), TLS
 * client-certificate logon (the listener does not ask for a client certificate), Kerberos/SSO,
 * `{1}:`-obfuscated passwords (compared verbatim), methods other than the four above, the
 * 5-second granularity of the real session cleaner, and the peer pid binding on the UNIX socket.
 */

import { SimServer } from "./server.ts";
import type { KopanoSimOptions, SimUrls } from "./server.ts";
import type { Fault } from "./faults.ts";
import type { SimRequest } from "./request_log.ts";
import type { SimSessionInfo } from "./sessions.ts";
import type { SimConnectionInfo, SimConnectionStats } from "./connection_log.ts";

export type { KopanoSimOptions, SimUrls, TlsListen } from "./server.ts";
export { parseHostPort } from "./server.ts";
export type { SimUser } from "./directory.ts";
export { CAPTURED_USERS, DEFAULT_USERS, validateUsers } from "./directory.ts";
export type { UnixPeer } from "./methods.ts";
export type { Fault, FaultKind, RawReply, Transport } from "./faults.ts";
export { FAULT_KINDS, parseFaultSpec } from "./faults.ts";
export type { SimRequest } from "./request_log.ts";
export type { SimSessionInfo } from "./sessions.ts";
export type { SimConnectionInfo, SimConnectionStats } from "./connection_log.ts";
export {
  CAP,
  KCERR,
  LOGON_FLAG,
  PROP_DISABLED_FEATURES,
  PROP_ENABLED_FEATURES,
} from "./constants.ts";
export { mergeFeatures } from "./features.ts";
export { serverProfile } from "./version.ts";

/** A running sim. */
export interface KopanoSim extends AsyncDisposable {
  /** One URL per listener: "http://127.0.0.1:PORT/kopano", "https://…", "file:///path". */
  readonly urls: SimUrls;
  /** Every request received, oldest first (a live array; see SimRequest). */
  readonly requests: readonly SimRequest[];
  /** The 16-byte GUID every successful logon reports (random per sim). */
  readonly serverGuid: Uint8Array;
  /** The emulated version, e.g. "11.0.2". */
  readonly version: string;
  /** Number of sessions logged on and not expired. */
  openSessions(): number;
  sessions(): SimSessionInfo[];
  /** Every connection accepted, oldest first (a live array; see SimConnectionInfo). */
  connections(): readonly SimConnectionInfo[];
  /** Exact totals: connections accepted per transport, TLS handshakes completed, open now. */
  connectionStats(): SimConnectionStats;
  /**
   * Replaces the active faults. A bad fault throws at once (the old ones stay). The promise
   * settles once listeners are really closed or reopened, which only "refuse" needs: await it.
   */
  setFaults(faults: Fault[]): Promise<void>;
  clearFaults(): Promise<void>;
  clearRequests(): void;
  /** Closes every listener and connection; resolves when all are gone. Idempotent. */
  close(): Promise<void>;
}

/** Starts a sim; resolves once every listener is bound (so `urls` has the real ports). */
export async function startKopanoSim(options: KopanoSimOptions = {}): Promise<KopanoSim> {
  const s = await SimServer.start(options);
  return {
    get urls() {
      return s.urls;
    },
    requests: s.requests,
    serverGuid: s.serverGuid,
    version: s.profile.text,
    openSessions: () => s.openSessions(),
    sessions: () => s.sessions(),
    connections: () => s.connections(),
    connectionStats: () => s.connectionStats(),
    setFaults: (f) => s.setFaults(f),
    clearFaults: () => s.clearFaults(),
    clearRequests: () => s.clearRequests(),
    close: () => s.close(),
    [Symbol.asyncDispose]: () => s.close(),
  };
}
