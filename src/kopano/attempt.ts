// One attempt against one socket= server: logon, the feature query when service= asks for one,
// and logoff whenever a session was opened. Returns what the server said, in terms the decision
// (authenticate.ts) understands; every step is reported for debug lines and `check`.
import { ConnectError, openConnection, StepReporter } from "./connect.ts";
import { Deadline } from "../common/deadline.ts";
import { decideFeatures } from "./features.ts";
import { Channel, closeQuietly, ConnectionSource, errorText, HttpReply } from "./http.ts";
import { KCERR_LOGON_FAILED, kcerrName } from "./kcerr.ts";
import { neutralise } from "../common/log_text.ts";
import type { SocketSpec } from "./socket_spec.ts";
import {
  getUserEnvelope,
  honoursNoUidAuth,
  logoffEnvelope,
  logonEnvelope,
  parseGetUserReply,
  parseLogoffReply,
  parseLogonReply,
  parseServerVersion,
  SoapError,
} from "./soap.ts";

export type StepName = "connect" | "tls" | "logon" | "version" | "features" | "logoff";

export interface Step {
  socket: string;
  step: StepName;
  ok: boolean;
  text: string;
}

export type Observer = (step: Step) => void;

export type AttemptOutcome =
  /** Password accepted and, if asked, a feature enabled. */
  | { kind: "accepted"; feature: string | null }
  /** The server refused the logon (wrong password, unknown user, no access). */
  | { kind: "refused" }
  /** Password accepted, but none of the service= features is enabled. */
  | { kind: "feature-denied" }
  /** No usable answer: connect/TLS failure, timeout, fault, unparsable reply, unexpected code. */
  | { kind: "no-answer"; reason: string }
  /** Logon accepted over file:// by a server that may have ignored NO_UID_AUTH (pam_mapi(8), RETURN VALUES). */
  | { kind: "guard"; reason: string };

export interface Credentials {
  user: string;
  /** UTF-8, never made a string (src/pam/input.ts). */
  password: Uint8Array;
  /** PAM service name for szClientAppMisc (the server's audit log), or null. */
  service: string | null;
}

/** Gives an attempt its connections to one server, bounded by the attempt's deadline. */
export type Connector = (
  spec: SocketSpec,
  caCerts: string[] | undefined,
  deadline: Deadline,
  report: StepReporter,
) => ConnectionSource;

/** The fork path's way: a new connection for each attempt, closed at its end. */
export const freshConnections: Connector = (spec, caCerts, deadline, report) => ({
  take: () => null,
  open: () => openConnection(spec, deadline, caCerts, report),
  done: (conn) => closeQuietly(conn),
});

/** When the deadline has passed with a session open, logoff gets this much extra time. */
const LATE_LOGOFF_MS = 500;

const SHOWN = 160;

/**
 * Makes server-provided text safe to log: never the password (a server may echo it), no control
 * or invisible characters, bounded. The password is looked for before anything is changed or
 * cut, so that no part of it survives either.
 */
export function serverText(s: string, password: Uint8Array): string {
  let t = neutralise(redact(s.slice(0, SHOWN + password.length), password), " ").trim();
  if (t.length > SHOWN || s.length > SHOWN + password.length) t = t.slice(0, SHOWN) + "...";
  return t;
}

/** `s` with every occurrence of `secret` (UTF-8) replaced, compared as bytes. */
function redact(s: string, secret: Uint8Array): string {
  if (secret.length === 0) return s;
  const b = new TextEncoder().encode(s);
  const parts: string[] = [];
  let from = 0;
  for (let at = b.indexOf(secret[0]); at >= 0 && at + secret.length <= b.length;) {
    let k = 1;
    while (k < secret.length && b[at + k] === secret[k]) k++;
    if (k === secret.length) {
      parts.push(decoder.decode(b.subarray(from, at)), "[redacted]");
      from = at + secret.length;
      at = b.indexOf(secret[0], from);
    } else {
      at = b.indexOf(secret[0], at + 1);
    }
  }
  const out = parts.length === 0 ? s : parts.join("") + decoder.decode(b.subarray(from));
  b.fill(0); // it held what the server sent: perhaps the password
  return out;
}

const decoder = new TextDecoder();

function replyProblem(reply: HttpReply, call: string, password: Uint8Array): string | null {
  if (reply.status === 200) return null;
  // gSOAP answers faults with HTTP 500 and a SOAP Fault body: name it when we can read it.
  let fault = "";
  try {
    parseLogoffReply(reply.body);
  } catch (e) {
    if (e instanceof SoapError && e.fault) fault = `, ${serverText(e.message, password)}`;
  }
  return `${call}: HTTP status ${reply.status}${fault}`;
}

/** What an attempt takes from the module's arguments (args.ts's Config has both). */
export interface AttemptLimits {
  /** Per-attempt limit in seconds. */
  timeout: number;
  /** Required features, lower case, in the given order; null when service= was not given. */
  services: string[] | null;
}

export async function attempt(
  spec: SocketSpec,
  cfg: AttemptLimits,
  creds: Credentials,
  caCerts: string[] | undefined,
  observe: Observer,
  connect: Connector = freshConnections,
): Promise<AttemptOutcome> {
  const note = (step: StepName, ok: boolean, text: string) =>
    observe({ socket: spec.url, step, ok, text });
  const clean = (s: string) => serverText(s, creds.password);
  const deadline = new Deadline(cfg.timeout * 1000);
  const channelFor = (d: Deadline) => new Channel(connect(spec, caCerts, d, note), spec, d);
  let channel = channelFor(deadline);
  let session: string | null = null;
  // Whether the connection may serve another login (the resident helper keeps it alive): not
  // after anything went wrong on it, whatever the verdict.
  let reusable = true;

  const call = async (what: string, body: string | Uint8Array): Promise<HttpReply> => {
    try {
      return await channel.post(body);
    } catch (e) {
      if (e instanceof ConnectError) throw new NoAnswer(e.step, e.message);
      throw new NoAnswer(
        what === "getUser" ? "features" : "logon",
        `${what}: ${clean(errorText(e))}`,
      );
    }
  };

  try {
    // --- logon
    let reply = await call("logon", logonEnvelope(creds.user, creds.password, creds.service));
    const httpProblem = replyProblem(reply, "logon", creds.password);
    if (httpProblem) throw new NoAnswer("logon", httpProblem);
    let logon;
    try {
      logon = parseLogonReply(reply.body);
    } catch (e) {
      throw new NoAnswer("logon", `logon: ${clean(errorText(e))}`);
    }
    const version = logon.serverVersion === null ? "not reported" : clean(logon.serverVersion);
    if (logon.er === KCERR_LOGON_FAILED) {
      note("logon", false, `logon refused by the server (${kcerrName(logon.er)})`);
      return { kind: "refused" };
    }
    if (logon.er !== 0) {
      throw new NoAnswer("logon", `logon: unexpected answer ${kcerrName(logon.er)}`);
    }
    if (logon.sessionId === "0") {
      throw new NoAnswer("logon", "logon: accepted without a session id");
    }
    session = logon.sessionId;
    note("logon", true, "logon accepted, session opened");
    note("version", true, `server version ${version}`);

    // --- the file:// guard: a server older than Zarafa 7.1.1 ignores NO_UID_AUTH, so over a UNIX
    // socket its "accepted" may rest on our process's uid instead of the password.
    if (spec.kind === "unix" && !honoursNoUidAuth(parseServerVersion(logon.serverVersion))) {
      const reason = `server version ${version} is older than Zarafa 7.1.1 or unknown: ` +
        "it may accept a logon over file:// without checking the password";
      note("version", false, reason);
      return { kind: "guard", reason };
    }

    // --- features
    if (cfg.services === null) return { kind: "accepted", feature: null };
    reply = await call("getUser", getUserEnvelope(session));
    const userProblem = replyProblem(reply, "getUser", creds.password);
    if (userProblem) throw new NoAnswer("features", userProblem);
    let user;
    try {
      user = parseGetUserReply(reply.body);
    } catch (e) {
      throw new NoAnswer("features", `getUser: ${clean(errorText(e))}`);
    }
    if (user.er !== 0) throw new NoAnswer("features", `getUser: ${kcerrName(user.er)}`);
    if (!user.hasUser) throw new NoAnswer("features", "getUser: reply without a user object");
    const shown = (l: string[] | null) =>
      l === null ? "(no list)" : l.map(clean).join(" ") || "(none)";
    note("features", true, `enabled: ${shown(user.enabled)}; disabled: ${shown(user.disabled)}`);
    const verdict = decideFeatures(cfg.services, user.enabled, user.disabled);
    if (verdict.kind === "unreadable") {
      throw new NoAnswer("features", `getUser: ${clean(verdict.reason)}`);
    }
    if (verdict.kind === "disabled") {
      note("features", false, `none of ${cfg.services.join("|")} is enabled`);
      return { kind: "feature-denied" };
    }
    note("features", true, `feature ${verdict.feature} is enabled`);
    return { kind: "accepted", feature: verdict.feature };
  } catch (e) {
    reusable = false;
    if (e instanceof NoAnswer) {
      note(e.step, false, e.message);
      return { kind: "no-answer", reason: e.message };
    }
    throw e;
  } finally {
    if (session !== null) {
      let late: Deadline | null = null;
      if (deadline.expired) {
        reusable = false;
        late = new Deadline(LATE_LOGOFF_MS);
        channel.close();
        channel = channelFor(late);
      }
      try {
        const r = await channel.post(logoffEnvelope(session));
        const problem = replyProblem(r, "logoff", creds.password);
        if (problem) {
          reusable = false;
          note("logoff", false, problem);
        } else {
          const result = parseLogoffReply(r.body);
          note(
            "logoff",
            result === 0,
            result === 0 ? "logged off" : `logoff: ${kcerrName(result)}`,
          );
        }
      } catch (e) {
        reusable = false;
        note("logoff", false, `logoff failed: ${clean(errorText(e))}`);
      } finally {
        late?.cancel();
      }
    }
    channel.finish(reusable);
    deadline.cancel();
  }
}

/** The server gave no usable answer at some step; `message` is log-safe. */
class NoAnswer extends Error {
  constructor(readonly step: StepName, message: string) {
    super(message);
  }
}
