// The decision (pam_mapi(8), RETURN VALUES) and the logging policy (LOGGING): tries the socket= servers in order,
// stops at the first definite answer, and turns the outcome into a PAM result and log records.
// `--pam` and `check` both run exactly this.
import type { Config } from "./args.ts";
import { attempt, AttemptOutcome, Connector, Observer, Step } from "../kopano/attempt.ts";
import { checkCredentials } from "./input.ts";
import { neutralise } from "../common/log_text.ts";
import type { LogRecord, PamResult, Priority } from "./results.ts";

export interface AuthInput {
  user: Uint8Array;
  password: Uint8Array;
  /** PAM_SERVICE and PAM_RHOST as bytes; both only used for log text (and the server's audit). */
  service: Uint8Array;
  rhost: Uint8Array;
}

export interface Decision {
  result: PamResult;
  /** Short reason: "logon accepted", "logon refused", "feature not enabled", ... */
  reason: string;
  /** The socket whose answer decided, or null when none answered. */
  socket: string | null;
  /** The feature found enabled, when service= was given and the logon succeeded. */
  feature: string | null;
  /** Why each server gave no answer, when none did. */
  failures: string[];
  /** Every step of every attempt, in order. */
  steps: Step[];
  /** Records for pam_syslog, policy (quiet, debug) applied: debug lines, then the outcome line. */
  log: LogRecord[];
}

// ignoreBOM: a leading U+FEFF is part of the name (and shown as "?"), not a byte-order mark.
const lossy = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A value for a `key=value` log field: control and invisible characters neutralised (log_text.ts),
 * length capped, quoted when it holds a space, quote, backslash or '=' (so a crafted user name
 * cannot fake another field).
 */
export function logValue(s: string, max = 64): string {
  let t = neutralise(s);
  const cps = [...t];
  if (cps.length > max) t = cps.slice(0, max).join("") + "...";
  if (t !== "" && !/[\s"\\=]/.test(t)) return t;
  return '"' + t.replace(/[\\"]/g, (c) => "\\" + c) + '"';
}

/** PAM_SERVICE for szClientAppMisc, only when it is a plain name. */
function clientMisc(service: string): string | null {
  return /^[A-Za-z0-9._-]{1,64}$/.test(service) ? service : null;
}

export async function authenticate(
  cfg: Config,
  input: AuthInput,
  caCerts: string[] | undefined,
  observe: Observer = () => {},
  connect?: Connector,
): Promise<Decision> {
  const steps: Step[] = [];
  const log: LogRecord[] = [];
  const onStep: Observer = (s) => {
    steps.push(s);
    if (s.step === "logoff" && !s.ok) {
      // Not a verdict, but a session left open on the server is worth the admin's attention.
      log.push({
        priority: "warning",
        message: `session not logged off; socket=${s.socket} ${s.text}`,
      });
    } else if (cfg.debug) {
      log.push({ priority: "debug", message: `socket=${s.socket} ${s.step}: ${s.text}` });
    }
    observe(s);
  };
  const service = lossy.decode(input.service);
  const fields = [`user=${logValue(lossy.decode(input.user))}`];
  if (input.rhost.length > 0) fields.push(`rhost=${logValue(lossy.decode(input.rhost), 128)}`);

  const finish = (
    result: PamResult,
    priority: Priority,
    reason: string,
    extra: {
      socket?: string;
      feature?: string | null;
      required?: string;
      failures?: string[];
      show?: boolean;
    } = {},
  ): Decision => {
    const parts = [...fields];
    if (extra.socket) parts.push(`socket=${extra.socket}`);
    parts.push(`result=${result}`, `reason=${logValue(reason, 200)}`);
    if (extra.feature) parts.push(`feature=${extra.feature}`);
    if (extra.required) parts.push(`required=${extra.required}`);
    if (extra.failures?.length) parts.push(`detail=${logValue(extra.failures.join("; "), 600)}`);
    const word = result === "PAM_SUCCESS" ? "success" : "failure";
    if (extra.show !== false) {
      log.push({ priority, message: `authentication ${word}; ${parts.join(" ")}` });
    }
    return {
      result,
      reason,
      socket: extra.socket ?? null,
      feature: extra.feature ?? null,
      failures: extra.failures ?? [],
      steps,
      log,
    };
  };

  const creds = checkCredentials(input.user, input.password);
  if (!creds.ok) return finish("PAM_AUTH_ERR", "notice", creds.reason);

  const failures: string[] = [];
  let guarded = false;
  for (const spec of cfg.sockets) {
    const outcome: AttemptOutcome = await attempt(
      spec,
      cfg,
      { user: creds.user, password: creds.password, service: clientMisc(service) },
      caCerts,
      onStep,
      connect,
    );
    const socket = spec.url;
    switch (outcome.kind) {
      case "accepted":
        return finish("PAM_SUCCESS", "info", "logon accepted", {
          socket,
          feature: outcome.feature,
        });
      case "refused":
        // quiet: routine wrong passwords and unknown users are not logged (pam_mapi(8), quiet).
        return finish("PAM_AUTH_ERR", "notice", "logon refused", { socket, show: !cfg.quiet });
      case "feature-denied":
        return finish("PAM_AUTH_ERR", "notice", "feature not enabled", {
          socket,
          required: cfg.services!.join("|"),
        });
      case "guard":
        guarded = true;
        failures.push(`${socket}: ${outcome.reason}`);
        break;
      case "no-answer":
        failures.push(`${socket}: ${outcome.reason}`);
        break;
    }
  }
  // No server gave an answer we can trust: fail closed (or step aside, if the admin opted in).
  const result = cfg.ignoreAuthinfoUnavail ? "PAM_IGNORE" : "PAM_AUTHINFO_UNAVAIL";
  const reason = guarded
    ? "server too old to verify the password over file://"
    : "server unavailable";
  return finish(result, "err", reason, { failures });
}
