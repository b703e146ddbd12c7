// `deno task bench --daemon-memory N`: the resident helper's memory and descriptors over many
// logins through the real libpam (pam_bench, 8 clients at once, daemon=SOCKET), from a fresh
// start and after a warm-up. V8's heap and the allocator's arenas settle during the first 20 000
// or 30 000 logins and then stay flat, so both are reported: the growth over the first N logins of
// a fresh daemon, and over N logins after W warm-up ones (the target: RSS growth under
// 16 MB over 100 000 logins, and no descriptor growth). The logins rotate, 10 000 at a time, over
// http:// with the right password, https://, service=imap, and a wrong password, each run checked
// like the bench's (checks.ts).
import { acceptedCalls, checkCases, checkedRun, type Expect, makeCase } from "./checks.ts";
import { BenchError } from "./driver.ts";
import { loadAvg } from "./proc.ts";
import type { Usage } from "./resident.ts";
import { fmt } from "./stats.ts";
import { FEATURE, makeWorkspace, type RowKey, type WorkspaceOptions } from "./workspace.ts";

export const MEMORY_CLIENTS = 8;
const CHUNK = 10_000;

export interface MemoryOptions extends WorkspaceOptions {
  /** Logins measured (N), and warm-up logins before the second measurement (W). */
  logins: number;
  warmup: number;
  print?: (line: string) => void;
}

export interface MemoryReport {
  /** Usage by logins done (0: the fresh daemon). */
  usage: Map<number, Usage>;
  fresh: { from: Usage; to: Usage };
  warm: { from: Usage; to: Usage };
}

interface Kind {
  key: RowKey;
  what: string;
  wrong?: boolean;
}

const KINDS: Kind[] = [
  { key: { impl: "daemon", mode: "plain", transport: "http" }, what: "http://" },
  { key: { impl: "daemon", mode: "plain", transport: "https" }, what: "https://" },
  { key: { impl: "daemon", mode: "service", transport: "http" }, what: `service=${FEATURE}` },
  {
    key: { impl: "daemon", mode: "plain", transport: "http" },
    what: "wrong password",
    wrong: true,
  },
];

const mb = (kb: number) => fmt(kb / 1024);
const show = (u: Usage) =>
  `RSS ${mb(u.rssKb)} MB, ${u.fds} descriptors (${u.kopano} of them Kopano connections)`;
/** Descriptors other than the kept-alive Kopano connections (their number depends on overlap). */
const ownFds = (u: Usage) => u.fds - u.kopano;

export async function runDaemonMemory(o: MemoryOptions): Promise<MemoryReport> {
  const print = o.print ?? ((s: string) => console.log(s));
  for (const [name, n] of [["logins", o.logins], ["warm-up", o.warmup]] as const) {
    if (n % MEMORY_CLIENTS !== 0) {
      throw new BenchError(`the ${name} count must be a multiple of ${MEMORY_CLIENTS} (clients)`);
    }
  }
  await using ws = await makeWorkspace(o);
  print(`memory: load average before: ${await loadAvg()}; daemon pid ${ws.daemon.pid} (as root)`);
  const usage = new Map<number, Usage>([[0, await ws.daemon.usage()]]);
  print(`memory: fresh daemon: ${show(usage.get(0)!)}`);
  // Checked first, like the bench's rows (7 logins, not counted below).
  await checkCases(ws, KINDS.filter((k) => !k.wrong).map((k) => makeCase(k.key)));

  const total = o.warmup + o.logins;
  const marks = new Set([o.warmup, o.logins, total]);
  for (let n = CHUNK; n < total; n += CHUNK) marks.add(n);
  let done = 0;
  let turn = 0;
  for (const mark of [...marks].filter((m) => m > 0).sort((a, b) => a - b)) {
    const kind = KINDS[turn++ % KINDS.length];
    const c = makeCase(kind.key);
    const e: Expect = {
      what: kind.what,
      user: c.user,
      password: kind.wrong ? "memory-wrong" : c.password,
      outcome: kind.wrong ? "PAM_AUTH_ERR" : "PAM_SUCCESS",
      calls: kind.wrong ? ["logon"] : acceptedCalls(c),
    };
    const size = mark - done;
    const r = await checkedRun(ws, c, e, [
      "--clients",
      String(MEMORY_CLIENTS),
      "--count",
      String(size / MEMORY_CLIENTS),
    ]);
    done = mark;
    const u = await ws.daemon.usage();
    usage.set(done, u);
    print(
      `memory: after ${done} logins (${size} ${kind.what} at ${fmt(size / (r.wallUs / 1e6), 0)}/s` +
        `): ${show(u)}`,
    );
  }
  const fresh = { from: usage.get(0)!, to: usage.get(o.logins)! };
  const warm = { from: usage.get(o.warmup)!, to: usage.get(total)! };
  const grew = (w: { from: Usage; to: Usage }) => (w.to.rssKb - w.from.rssKb) / 1024;
  const line = (w: { from: Usage; to: Usage }) =>
    `RSS ${mb(w.from.rssKb)} -> ${mb(w.to.rssKb)} MB (${fmt(grew(w))} MB), descriptors ` +
    `besides Kopano connections ${ownFds(w.from)} -> ${ownFds(w.to)}`;
  const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
  print(`memory: from a fresh start, over ${o.logins} logins: ${line(fresh)}`);
  print(`memory: after ${o.warmup} warm-up logins, over ${o.logins} more: ${line(warm)}`);
  print(
    `targets (memory, ${o.logins} logins): RSS growth < 16 MB after warm-up ` +
      `${verdict(grew(warm) < 16)}, from a fresh start ${verdict(grew(fresh) < 16)}; no ` +
      `descriptor growth after warm-up ${verdict(ownFds(warm.to) <= ownFds(warm.from))}, from a ` +
      `fresh start ${verdict(ownFds(fresh.to) <= ownFds(fresh.from))}`,
  );
  print(`memory: load average after: ${await loadAvg()}`);
  return { usage, fresh, warm };
}
