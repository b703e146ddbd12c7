// `pam_mapi_helper status [--socket PATH] [--json]`: whether pam_mapi.so would hand logins to the
// resident helper, the trust check of docs/protocol.md §7.2 spelled out step by step, and the
// daemon's own counters (§7.4). What the daemon says about itself is checked field by field
// (status_fields.ts), and every line is printed with control and invisible characters escaped: a
// daemon's text must not redraw the terminal. Loaded only for this command.
import { Deadline } from "../common/deadline.ts";
import { closeQuietly, errorText } from "../kopano/http.ts";
import { escapeUnsafe } from "../common/log_text.ts";
import { checkStatus, type Reported } from "./status_fields.ts";
import { provePeer } from "./status_proof.ts";
import {
  type DaemonStatus,
  decodeStatusReply,
  encodeStatusQuery,
  StatusReplyError,
} from "../daemon/status_query.ts";
import { checkSocketPath, DEFAULT_DAEMON_SOCKET, trustedUids } from "../daemon/trust.ts";

const USAGE = "Usage: pam_mapi_helper status [--socket PATH] [--json]\n";
const TIMEOUT_MS = 5000;
/** How often to ask while other status queries' proofs are in the way (§7.4). */
const PROOF_TRIES = 6;
const MAX_REPLY = 65536;
const enc = new TextEncoder();

/** What pam_mapi.so does with this socket, and the exit status that says it. */
const VERDICTS = {
  daemon: { exit: 0, text: "pam_mapi.so sends logins to this daemon" },
  refused: {
    exit: 1,
    text: "pam_mapi.so refuses this daemon: it sends it nothing and every login fails",
  },
  helper: { exit: 2, text: "no daemon answers: pam_mapi.so starts the helper for each login" },
  unknown: { exit: 3, text: "the daemon's state could not be established" },
};
type Verdict = keyof typeof VERDICTS;

interface Step {
  step: "directory" | "symlink" | "socket" | "connect" | "reply" | "peer";
  path?: string;
  ok: boolean;
  text: string;
}

interface Report {
  socket: string;
  trusted_accounts: Record<string, string>;
  steps: Step[];
  verdict: Verdict;
  reason: string;
  daemon: Reported<DaemonStatus> | null;
  /** The daemon's fields that are not of their type (shown as invalid, null in `daemon`). */
  daemon_invalid: string[];
  exit: number;
}

function write(text: string): void {
  const b = enc.encode(text);
  let off = 0;
  while (off < b.length) off += Deno.stdout.writeSync(b.subarray(off));
}

/** Sends the status query and reads the reply; throws with a log-safe message. */
async function ask(path: string, touch: number): Promise<{ text: string; ms: number }> {
  const deadline = new Deadline(TIMEOUT_MS);
  const conn = await deadline.race(Deno.connect({ transport: "unix", path }));
  const unregister = deadline.onExpire(() => closeQuietly(conn));
  const start = performance.now();
  try {
    const q = enc.encode(encodeStatusQuery({ touch }));
    for (let off = 0; off < q.length;) off += await deadline.race(conn.write(q.subarray(off)));
    await conn.closeWrite();
    const buf = new Uint8Array(MAX_REPLY + 1);
    let n = 0;
    while (n < buf.length) {
      const got = await deadline.race(conn.read(buf.subarray(n)));
      if (got === null) break;
      n += got;
    }
    if (n > MAX_REPLY) throw new Error(`a reply larger than ${MAX_REPLY} bytes`);
    return { text: new TextDecoder().decode(buf.subarray(0, n)), ms: performance.now() - start };
  } finally {
    unregister();
    deadline.cancel();
    closeQuietly(conn);
  }
}

async function examine(path: string): Promise<Report> {
  const trusted = trustedUids();
  const steps: Step[] = [];
  let invalid: string[] = [];
  const report = (
    verdict: Verdict,
    reason: string,
    daemon: Reported<DaemonStatus> | null = null,
  ): Report => ({
    socket: path,
    trusted_accounts: Object.fromEntries(trusted),
    steps,
    verdict,
    reason,
    daemon,
    daemon_invalid: invalid,
    exit: VERDICTS[verdict].exit,
  });
  // Check 1: the path, its directories and symlinks, the socket.
  const where = checkSocketPath(path, trusted);
  steps.push(...where.steps.map((s) => ({ step: s.kind, path: s.path, ok: s.ok, text: s.text })));
  if (where.missing) return report("helper", "no socket at that path");
  const pathOk = where.ok;
  // Then connect and ask (a status query carries no secret, so an untrusted daemon is asked too);
  // again while another query's proof is in the way (§7.4), PROOF_TRIES times at most.
  for (let tries = 1;; tries++) {
    // A recent time no one else is likely to pick (milliseconds count); well within
    // TOUCH_WINDOW_MS.
    const touch = Date.now() - 1000 - Math.floor(Math.random() * 300_000);
    const sent = performance.now();
    let answer;
    try {
      answer = await ask(path, touch);
    } catch (e) {
      const refused = e instanceof Deno.errors.ConnectionRefused;
      const denied = e instanceof Deno.errors.PermissionDenied;
      const gone = e instanceof Deno.errors.NotFound;
      const why = refused
        ? "connection refused (no daemon listens: a stale socket)"
        : denied
        ? "permission denied (pam_mapi.so, when it gets this, starts the helper)"
        : `${errorText(e)}`;
      steps.push({ step: "connect", ok: false, text: why });
      if (!pathOk) return report("refused", "the socket's path fails the trust check");
      if (refused || denied || gone) return report("helper", why);
      return report("unknown", `no status from the daemon: ${why}`);
    }
    let status: Reported<DaemonStatus>;
    try {
      ({ status, invalid } = checkStatus(decodeStatusReply(answer.text)));
    } catch (e) {
      const why = e instanceof StatusReplyError ? e.message : errorText(e);
      steps.push({ step: "connect", ok: true, text: "connected and asked for the status" });
      steps.push({ step: "reply", ok: false, text: why });
      if (!pathOk) return report("refused", "the socket's path fails the trust check");
      return report("unknown", `the daemon answered, but not a status: ${why}`);
    }
    // Check 2: who answers? It proves it by setting the socket's times to the value we chose,
    // which only the socket's owner or root can do.
    const peer = provePeer(path, touch, sent, status, trusted);
    if (peer.outcome === "inconclusive" && tries < PROOF_TRIES && pathOk) {
      await new Promise((r) => setTimeout(r, peer.retryMs));
      continue;
    }
    steps.push({ step: "connect", ok: true, text: "connected and asked for the status" });
    steps.push({ step: "reply", ok: true, text: `answered in ${answer.ms.toFixed(1)} ms` });
    const ok = peer.outcome === "proven";
    steps.push({
      step: "peer",
      ok,
      text: peer.outcome === "inconclusive"
        ? `could not tell who it is: ${peer.text}${
          tries > 1 ? `, in each of ${tries} tries` : ""
        } (another status query's proof was in the way: run status again)`
        : peer.text,
    });
    if (!pathOk) return report("refused", "the socket's path fails the trust check", status);
    if (!ok) {
      return report(
        peer.outcome === "refused" ? "refused" : "unknown",
        "the daemon did not prove it runs as root or the service account",
        status,
      );
    }
    if (invalid.length > 0) {
      return report(
        "unknown",
        `the daemon's report has fields of the wrong type (${invalid.slice(0, 8).join(", ")}${
          invalid.length > 8 ? ", ..." : ""
        }): not what a pam_mapi_helper daemon sends`,
        status,
      );
    }
    return report("daemon", "the path and the daemon pass the trust check", status);
  }
}

function plain(r: Report): string {
  const lines = [`resident helper socket ${r.socket}`];
  for (const s of r.steps) {
    const where = s.path ? `${s.path}: ` : "";
    lines.push(`  ${s.ok ? "ok  " : "FAIL"} ${s.step.padEnd(9)} ${where}${s.text}`);
  }
  lines.push(`verdict: ${VERDICTS[r.verdict].text} (${r.reason})`);
  const d = r.daemon;
  if (d) {
    const l = d.logins;
    const ms = (
      v: unknown,
    ) => (v === null ? "-" : typeof v === "number" ? `${v.toFixed(2)} ms` : v);
    lines.push(
      `daemon: pam_mapi_helper ${d.version}, pid ${d.pid}, uid ${d.uid}, up ${d.uptime_s} s ` +
        `(since ${d.started})`,
      `  logins: ${l.PAM_SUCCESS} PAM_SUCCESS, ${l.PAM_AUTH_ERR} PAM_AUTH_ERR, ` +
        `${l.PAM_AUTHINFO_UNAVAIL} PAM_AUTHINFO_UNAVAIL, ${l.PAM_IGNORE} PAM_IGNORE, ` +
        `${l.PAM_SERVICE_ERR} PAM_SERVICE_ERR`,
      `  requests: ${d.in_progress} in progress (this one included), ${d.rejected_busy} ` +
        `rejected as busy, ${d.malformed} malformed, ${d.late} not received in time, ` +
        `${d.internal_errors} internal errors`,
      `  latency over the last ${d.latency_ms.samples} logins: p50 ${ms(d.latency_ms.p50)}, ` +
        `p95 ${ms(d.latency_ms.p95)}`,
      `  Kopano connections: ${d.kopano_connections.open} open (${d.kopano_connections.idle} ` +
        `idle); ${d.kopano_connections.opened} opened and ${d.kopano_connections.reused} ` +
        "reused since start",
    );
    const m = d.memory_kb;
    lines.push(
      `  memory: ${m.rss} KiB resident; JavaScript heap ${m.heap_used} of ${m.heap_total} KiB, ` +
        `${m.external} KiB in buffers`,
    );
    if (r.daemon_invalid.length) lines.push(`  invalid: ${r.daemon_invalid.join(", ")}`);
  }
  lines.push(`exit ${r.exit}`);
  // Each line whole, so that a newline inside a reported value is escaped too.
  return lines.map(escapeUnsafe).join("\n") + "\n";
}

/** JSON with every character outside printable ASCII as \uXXXX: the same data, and nothing a
 * terminal would act on. */
function asciiJson(r: Report): string {
  return JSON.stringify(r).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export async function runStatus(argv: string[]): Promise<number> {
  let json = false;
  let socket: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") json = true;
    else if (a === "--socket" && i + 1 < argv.length && socket === null) socket = argv[++i];
    else if (a.startsWith("--socket=") && socket === null) socket = a.slice(9);
    else {
      Deno.stderr.writeSync(
        enc.encode(`pam_mapi_helper status: bad argument ${JSON.stringify(a)}\n${USAGE}`),
      );
      return 3;
    }
  }
  const r = await examine(socket ?? DEFAULT_DAEMON_SOCKET);
  write(json ? asciiJson(r) + "\n" : plain(r));
  return r.exit;
}
