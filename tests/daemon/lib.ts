// The resident helper under test: the built dist/pam_mapi_helper run as `serve` on a socket in a
// fresh directory (root-owned, mode 0755, in /run, so pam_mapi.so would trust it: tests/lib/
// socket_dir.ts), and a small client that speaks docs/protocol.md §7 as the shim does: connect, send
// the request, shut down the sending side, read to end of stream.
//
// For the shim's tests: `startDaemon()` gives the socket path to put in `daemon=` and a `stop()`;
// `startFakeDaemon()` (fake_daemon.py) listens on a trusted path but answers as another user and
// counts the bytes it received.
import { pamRequest, type PamRequestFields, type Reply, ROOT } from "../lib/helper.ts";
import { type KopanoSim, type KopanoSimOptions, startKopanoSim } from "../kopano_sim/mod.ts";
import { makeTestPki, type TestPki } from "../lib/pki.ts";
import { socketDir } from "../lib/socket_dir.ts";

export const HELPER = `${ROOT}/dist/pam_mapi_helper`;
/** Runs a command as nobody (setpriv(1)). */
export const AS_NOBODY = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"];
export const FAKE_DAEMON = `${ROOT}/tests/daemon/fake_daemon.py`;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs the built helper once (`status`, or a `serve` expected to refuse), as root or via `wrap`. */
export async function runHelper(
  argv: string[],
  wrap: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, ...args] = [...wrap, HELPER, ...argv];
  const out = await new Deno.Command(cmd, {
    args,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
    stdin: "null",
    signal: AbortSignal.timeout(30_000), // a `serve` that starts after all must not hang the test
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A directory pam_mapi.so would trust for a daemon socket: root-owned, 0755, in /run. */
export function trustedDir(prefix = "pam_mapi_d_"): Promise<string> {
  return socketDir(prefix);
}

export interface Daemon extends AsyncDisposable {
  socket: string;
  dir: string;
  pid: number;
  /** Everything the daemon wrote to stderr so far (its log). */
  log(): string;
  /** Sends `signal` and waits for the exit; returns the exit code and the whole log. */
  stop(signal?: Deno.Signal): Promise<{ code: number; log: string; ms: number }>;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number>;
}

export interface DaemonOptions {
  /** Directory for the socket (default: a new trusted one, removed at stop). */
  dir?: string;
  /** Socket path (default DIR/helper.sock). */
  socket?: string;
  /** Extra arguments after `serve` (default: --socket SOCKET). */
  args?: string[];
  helper?: string;
  /** Command to run the helper under (e.g. ["setpriv", "--reuid", "nobody", ...]). */
  wrap?: string[];
  /**
   * Environment besides PATH (the helper gets no other, as under systemd; the built helper's
   * launcher builds its own anyway); an empty value removes a variable.
   */
  env?: Record<string, string>;
  /**
   * The daemon's pid, given the spawned process's, when `wrap` does not exec it (e.g. `unshare
   * --fork`, which neither is the daemon nor passes signals on): stop() signals that process.
   */
  daemonPid?: (spawned: number) => number;
}

/** Runs `serve` and waits for its "started" line; throws with its log if it does not start. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? await trustedDir();
  const socket = opts.socket ?? `${dir}/helper.sock`;
  const argv = [opts.helper ?? HELPER, "serve", ...(opts.args ?? ["--socket", socket])];
  const [cmd, ...args] = [...(opts.wrap ?? []), ...argv];
  const env = Object.entries({ PATH: "/usr/bin:/bin", ...opts.env })
    .filter(([, v]) => v !== "");
  const child = new Deno.Command(cmd, {
    args,
    clearEnv: true,
    env: Object.fromEntries(env),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const { promise: started, resolve: sawStart } = Promise.withResolvers<boolean>();
  const reading = (async () => {
    for await (const chunk of child.stderr) {
      log += dec.decode(chunk, { stream: true });
      if (log.includes("started:")) sawStart(true);
    }
    sawStart(false);
  })();
  const exited = child.status.then((s) => s.code);
  const cleanup = async () => {
    await reading;
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  if (!await started) {
    await exited;
    await cleanup();
    throw new Error(`daemon did not start (exit ${await exited}):\n${log}`);
  }
  const pid = opts.daemonPid?.(child.pid) ?? child.pid;
  let stopped: Promise<{ code: number; log: string; ms: number }> | null = null;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      const t0 = performance.now();
      try {
        Deno.kill(pid, signal);
      } catch {
        // already gone
      }
      const code = await exited;
      const ms = performance.now() - t0;
      await cleanup();
      return { code, log, ms };
    })();
    return stopped;
  };
  return {
    socket,
    dir,
    pid,
    log: () => log,
    stop,
    exited,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

export interface Exchange {
  /** The bytes received, as text. */
  text: string;
  /** How the stream ended: "eof", or the error that ended it. */
  end: string;
  ms: number;
}

export interface AskOptions {
  /** Shut down the sending side after the request (default true, as the shim does). */
  shutdown?: boolean;
  /** Give up reading after this long (default 30 s). */
  timeoutMs?: number;
}

/** One §7 exchange: connect, send `request`, shut down writing, read to end of stream. */
export async function ask(
  socket: string,
  request: string | Uint8Array,
  opts: AskOptions = {},
): Promise<Exchange> {
  const t0 = performance.now();
  const conn = await Deno.connect({ transport: "unix", path: socket });
  const timer = setTimeout(() => conn.close(), opts.timeoutMs ?? 30_000);
  const parts: Uint8Array[] = [];
  let end = "eof";
  try {
    const bytes = typeof request === "string" ? enc.encode(request) : request;
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
    if (opts.shutdown !== false) await conn.closeWrite();
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
  } catch (e) {
    end = e instanceof Error ? e.name : String(e);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return { text: dec.decode(all), end, ms: performance.now() - t0 };
}

/** A login through the daemon; the reply must be one JSON object followed by end of stream. */
export async function login(socket: string, f: PamRequestFields): Promise<Reply> {
  const r = await ask(socket, pamRequest(f));
  if (r.end !== "eof") throw new Error(`stream ended by ${r.end} after ${JSON.stringify(r.text)}`);
  return JSON.parse(r.text);
}

/** The daemon's status (the §7.4 query, answered directly). */
export async function status(socket: string): Promise<Record<string, unknown>> {
  const r = await ask(socket, JSON.stringify({ v: 1, query: "status", touch: Date.now() }));
  return JSON.parse(r.text).status;
}

/** Resident memory (KiB), open file descriptors and threads of a process, from /proc. */
export function procUsage(pid: number): { rssKb: number; fds: number; threads: number } {
  const st = Deno.readTextFileSync(`/proc/${pid}/status`);
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(st)![1]);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(st)![1]);
  const fds = [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  return { rssKb, fds, threads };
}

export interface FakeDaemon extends AsyncDisposable {
  socket: string;
  /** Bytes received per connection so far (the fake records them). */
  received(): Promise<number[]>;
}

/**
 * fake_daemon.py: binds `socket` as root (so the path passes check 1), then becomes `user` before
 * listening (so SO_PEERCRED names `user`), and answers every connection with `reply`. With `wrap`
 * (e.g. setpriv) it runs as another user from the start, and its socket belongs to that user. With
 * `touch`, it sets the socket's times as a status query asks, as a daemon running as `user` would.
 */
export async function startFakeDaemon(
  socket: string,
  user: string,
  reply: string,
  wrap: string[] = [],
  touch = false,
): Promise<FakeDaemon> {
  const record = `${socket}.received`;
  const replyFile = `${socket}.reply`;
  await Deno.writeTextFile(replyFile, reply);
  const [cmd, ...args] = [
    ...wrap,
    "/usr/bin/python3",
    FAKE_DAEMON,
    socket,
    user,
    replyFile,
    record,
    ...(touch ? ["touch"] : []),
  ];
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  reader.releaseLock();
  if (!first.value || !dec.decode(first.value).includes("ready")) {
    const out = await child.output();
    throw new Error(`fake daemon did not start: ${dec.decode(out.stderr)}`);
  }
  return {
    socket,
    async received() {
      const text = await Deno.readTextFile(record).catch(() => "");
      return text.split("\n").filter((l) => l !== "").map(Number);
    },
    async [Symbol.asyncDispose]() {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
      for (const f of [socket, record, replyFile]) await Deno.remove(f).catch(() => {});
    },
  };
}

export interface SimWorld extends AsyncDisposable {
  sim: KopanoSim;
  pki: TestPki;
  dir: string;
  /** Module arguments that reach the sim over each transport (https with its cafile=). */
  args: { tcp: string[]; tls: string[]; unix: string[] };
}

/** The Kopano-compatible server on TCP, TLS (a throw-away CA) and a UNIX socket at once. */
export async function simAllTransports(opts: KopanoSimOptions = {}): Promise<SimWorld> {
  const pki = await makeTestPki();
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_sim_" });
  const sim = await startKopanoSim({
    listen: ["127.0.0.1:0"],
    unix: `${dir}/server.sock`,
    tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
    unixPeer: "user",
    ...opts,
  });
  return {
    sim,
    pki,
    dir,
    args: {
      tcp: [`socket=${sim.urls.http[0]}`],
      tls: [`socket=${sim.urls.https[0]}`, `cafile=${pki.caFile}`],
      unix: [`socket=${sim.urls.unix[0]}`],
    },
    async [Symbol.asyncDispose]() {
      await sim.close();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(pki.dir, { recursive: true });
    },
  };
}
