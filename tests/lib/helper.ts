// Runs the helper as a real process, the way the shim does (--pam with a JSON request on stdin)
// or the way an administrator does (check). By default the source (src/main.ts) is started with the
// built helper's exact deno flags; pass `helper` to run a built dist/pam_mapi_helper instead.

export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const MAIN = `${ROOT}/src/main.ts`;
export const DENO_FLAGS = [
  "run",
  "--no-config",
  "--no-lock",
  "--no-prompt",
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--v8-flags=--no-lazy,--jitless,--single-threaded", // the built helper's start-up flags
];

const enc = new TextEncoder();
const dec = new TextDecoder();

export function b64(v: string | Uint8Array): string {
  const bytes = typeof v === "string" ? enc.encode(v) : v;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export interface PamRequestFields {
  user: string | Uint8Array;
  password: string | Uint8Array;
  args?: string[];
  service?: string;
  rhost?: string;
}

export function pamRequest(f: PamRequestFields): string {
  return JSON.stringify({
    v: 1,
    user: b64(f.user),
    authtok: b64(f.password),
    service: b64(f.service ?? "smtp"),
    rhost: b64(f.rhost ?? ""),
    args: (f.args ?? []).map(b64),
  });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident set size in KiB (when measured with measureRss). */
  maxRssKb?: number;
}

export interface RunOptions {
  stdin?: string | Uint8Array;
  /** A built helper to execute directly instead of `deno run src/main.ts`. */
  helper?: string;
  env?: Record<string, string>;
  clearEnv?: boolean;
  cwd?: string;
  /** Wrap in /usr/bin/time to report the peak RSS of the helper process. */
  measureRss?: boolean;
}

export async function runHelper(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  let cmd = opts.helper ?? Deno.execPath();
  let args = opts.helper ? argv : [...DENO_FLAGS, MAIN, ...argv];
  let rssFile: string | null = null;
  if (opts.measureRss) {
    rssFile = await Deno.makeTempFile({ prefix: "pam_mapi_rss_" });
    args = ["-f", "%M", "-o", rssFile, cmd, ...args];
    cmd = "/usr/bin/time";
  }
  const start = performance.now();
  // The built helper's launcher empties Deno's built-in root store; do the same for the source.
  const env = opts.helper ? opts.env : { DENO_TLS_CA_STORE: "", ...opts.env };
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env,
    clearEnv: opts.clearEnv,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  if (opts.stdin !== undefined) {
    await w.write(typeof opts.stdin === "string" ? enc.encode(opts.stdin) : opts.stdin)
      .catch(() => {});
  }
  await w.close().catch(() => {});
  const out = await child.output();
  const ms = performance.now() - start;
  const r: RunResult = {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms,
  };
  if (rssFile) {
    const text = await Deno.readTextFile(rssFile);
    await Deno.remove(rssFile);
    const m = /(\d+)\s*$/.exec(text.trim());
    if (m) r.maxRssKb = Number(m[1]);
  }
  return r;
}

export interface Reply {
  v: number;
  result: string;
  log: { priority: string; message: string }[];
}

export interface PamRun extends RunResult {
  reply: Reply;
}

/** Runs `--pam` with a request; asserts nothing, but parses the reply (throws if not JSON). */
export async function runPam(
  req: PamRequestFields | string,
  opts: RunOptions = {},
): Promise<PamRun> {
  const r = await runHelper(["--pam"], {
    ...opts,
    stdin: typeof req === "string" ? req : pamRequest(req),
  });
  let reply: Reply;
  try {
    reply = JSON.parse(r.stdout);
  } catch {
    throw new Error(`helper reply is not JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
  return { ...r, reply };
}
