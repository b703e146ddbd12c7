// Every pam_bench run of the bench is checked before its numbers count: each login ended as
// expected, the server saw exactly the SOAP calls expected of that many logins, over the row's
// transport, and for a daemon row the daemon counted exactly those logins while the module forked
// no helper. A failed check throws BenchError.
import { BenchError, type DriverRun, sameCounts, showCounts } from "./driver.ts";
import { checkThroughDaemon } from "./resident.ts";
import { diff } from "./sim.ts";
import { FEATURE, type Impl, label, type RowKey, type Workspace } from "./workspace.ts";

/** A row of the bench: who logs in, and the password that is right for them. */
export interface Case extends RowKey {
  user: string;
  password: string;
}

/** How every login of a run must end: PAM_SUCCESS, exactly PAM_AUTH_ERR, or any refusal. */
export type Outcome = "PAM_SUCCESS" | "PAM_AUTH_ERR" | "a refusal";

export interface Expect {
  /** For messages: "right password (user alice)". */
  what: string;
  user: string;
  password: string;
  outcome: Outcome;
  /** The SOAP calls each login makes. */
  calls: string[];
  /** Logins run first in pam_bench's parent, not timed (each must end as `outcome`). */
  warmup?: number;
}

const RIGHT = {
  plain: { user: "alice", password: "secret" },
  service: { user: "bob", password: "bobpass" },
};

/** The row's user and right password (`passwords` override it: tests). */
export function makeCase(k: RowKey, passwords: Partial<Record<Impl, string>> = {}): Case {
  return {
    ...k,
    user: RIGHT[k.mode].user,
    password: passwords[k.impl] ?? RIGHT[k.mode].password,
  };
}

/** SOAP calls of a login that is accepted (with service=: the feature asked for too). */
export function acceptedCalls(c: RowKey): string[] {
  return c.mode === "service" ? ["logon", "getUser", "logoff"] : ["logon", "logoff"];
}

/** Runs pam_bench `args` for the case as `e` says and checks it; CPU of server and daemon set. */
export async function checkedRun(
  ws: Workspace,
  c: Case,
  e: Expect,
  args: string[],
): Promise<DriverRun> {
  const warmup = e.warmup ?? 0;
  const daemon = c.impl === "daemon";
  const name = `${label(c)}: ${e.what}`;
  const calls0 = ws.sim.counts();
  const via0 = ws.sim.transports();
  const counters0 = daemon ? await ws.daemon.counters() : null;
  const serverCpu0 = ws.sim.cpuMs();
  const daemonCpu0 = daemon ? ws.daemon.cpu.ms() : 0;
  const r = await ws.drive(c, e.user, e.password, [
    ...(warmup ? ["--warmup", String(warmup)] : []),
    ...args,
  ]);
  r.serverCpuMs = ws.sim.cpuMs() - serverCpu0;
  if (daemon) r.daemonCpuMs = ws.daemon.cpu.ms() - daemonCpu0;
  await ws.sim.sync();

  const good = e.outcome === "a refusal"
    ? r.transactions - (r.results.get("PAM_SUCCESS") ?? 0)
    : r.results.get(e.outcome) ?? 0;
  if (good !== r.transactions || r.latUs.length !== r.transactions) {
    throw new BenchError(`${name} gave ${showCounts(r.results)}, expected ${e.outcome}`);
  }
  const n = r.transactions + warmup;
  const got = diff(calls0, ws.sim.counts());
  const want = new Map<string, number>();
  for (const k of e.calls) want.set(k, (want.get(k) ?? 0) + n);
  if (!sameCounts(got, want)) {
    throw new BenchError(
      `${name}: ${n} login(s) made the calls ${showCounts(got)}, expected ${showCounts(want)}`,
    );
  }
  const via = diff(via0, ws.sim.transports());
  const transport = c.transport === "https" ? "tls" : "tcp";
  if ([...via.keys()].some((t) => t !== transport)) {
    throw new BenchError(
      `${label(c)}: requests came over ${showCounts(via)}, not ${transport} only`,
    );
  }
  if (counters0) {
    const results = new Map(r.results);
    if (warmup) results.set(e.outcome, (results.get(e.outcome) ?? 0) + warmup);
    checkThroughDaemon(name, counters0, await ws.daemon.counters(), results);
  }
  return r;
}

/**
 * Before any timing, for each case: the right password accepted, a wrong one refused, and with
 * service= a user whose feature is disabled refused, each with exactly the expected SOAP calls.
 */
export async function checkCases(
  ws: Workspace,
  cases: Case[],
  passwords: Partial<Record<Impl, string>> = {},
): Promise<void> {
  for (const c of cases) {
    const samples: Expect[] = [
      {
        what: `right password (user ${c.user})`,
        user: c.user,
        password: c.password,
        outcome: "PAM_SUCCESS",
        calls: acceptedCalls(c),
      },
      {
        what: `wrong password (user ${c.user})`,
        user: c.user,
        password: c.password + "-wrong",
        outcome: "a refusal",
        calls: ["logon"],
      },
    ];
    if (c.mode === "service") {
      samples.push({
        what: `${FEATURE} disabled (user ${RIGHT.plain.user})`,
        user: RIGHT.plain.user,
        password: passwords[c.impl] ?? RIGHT.plain.password,
        outcome: "a refusal",
        calls: ["logon", "getUser", "logoff"],
      });
    }
    for (const s of samples) await checkedRun(ws, c, s, ["--count", "1"]);
  }
}
