// The flood row: what a bot's burst of wrong SMTP AUTH passwords does to the resident helper.
// Many clients at once (fewer than the daemon's 128 logins in progress, so a busy reply is a
// failure too), every login a wrong password, every one refused with PAM_AUTH_ERR after the
// server refused its logon, and the daemon's memory and descriptors before and after.
import { checkedRun, makeCase } from "./checks.ts";
import { fmt, percentile } from "./stats.ts";
import type { Usage } from "./resident.ts";
import type { Workspace } from "./workspace.ts";

export interface FloodResult {
  logins: number;
  clients: number;
  seconds: number;
  p50Ms: number;
  p95Ms: number;
  /** CPU per login of the PAM clients (libpam and the module) and of the daemon, ms. */
  clientCpuMs: number;
  daemonCpuMs: number;
  before: Usage;
  after: Usage;
}

/** `logins` (a multiple of `clients`) wrong-password logins through the daemon, all checked. */
export async function runFlood(
  ws: Workspace,
  logins: number,
  clients: number,
  password = "flood-wrong",
): Promise<FloodResult> {
  const c = makeCase({ impl: "daemon", mode: "plain", transport: "http" });
  const before = await ws.daemon.usage();
  const r = await checkedRun(ws, c, {
    what: `flood of ${logins} wrong passwords from ${clients} clients`,
    user: c.user,
    password,
    outcome: "PAM_AUTH_ERR",
    calls: ["logon"],
  }, ["--clients", String(clients), "--count", String(logins / clients)]);
  const after = await ws.daemon.usage();
  const ms = r.latUs.map((u) => u / 1000);
  return {
    logins: r.transactions,
    clients,
    seconds: r.wallUs / 1e6,
    p50Ms: percentile(ms, 50),
    p95Ms: percentile(ms, 95),
    clientCpuMs: r.cpuUs / 1000 / r.transactions,
    daemonCpuMs: r.daemonCpuMs / r.transactions,
    before,
    after,
  };
}

const mb = (kb: number) => fmt(kb / 1024);

/** The flood's report line. */
export function describeFlood(f: FloodResult): string {
  return `flood: ${f.logins} wrong-password logins from ${f.clients} clients at once through ` +
    `the daemon in ${fmt(f.seconds)} s (${fmt(f.logins / f.seconds)} auth/s), every one ` +
    `PAM_AUTH_ERR after a refused logon, none busy; p50 ${fmt(f.p50Ms)} ms, p95 ` +
    `${fmt(f.p95Ms)} ms; CPU per login ${fmt(f.clientCpuMs, 2)} ms in the PAM clients + ` +
    `${fmt(f.daemonCpuMs, 2)} ms in the daemon; daemon RSS ${mb(f.before.rssKb)} MB -> ` +
    `${mb(f.after.rssKb)} MB, descriptors ${f.before.fds} -> ${f.after.fds} (Kopano ` +
    `connections among them ${f.before.kopano} -> ${f.after.kopano})`;
}
