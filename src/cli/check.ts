// `pam_mapi_helper check USER [MODULE-ARGS...] [--json]`: the module's own code path, run by hand,
// with every step printed in plain words (or as one JSON object). Loaded only for this command.
import { ArgError, Config, showArg } from "../pam/args.ts";
import { authenticate, Decision } from "../pam/authenticate.ts";
import type { Step } from "../kopano/attempt.ts";
import { launcherLog } from "../pam/launch.ts";
import { exitCodeFor } from "../pam/results.ts";
import { prepare, SetupError } from "../pam/setup.ts";

const MAX_LINE = 64 * 1024;
const enc = new TextEncoder();

function write(fd: typeof Deno.stdout | typeof Deno.stderr, text: string): void {
  const b = enc.encode(text);
  let off = 0;
  while (off < b.length) off += fd.writeSync(b.subarray(off));
}

class Aborted extends Error {}

/** Reads the password from the terminal with echo off, handling backspace and Ctrl-C. */
async function readFromTerminal(prompt: string): Promise<Uint8Array> {
  write(Deno.stderr, prompt);
  const out: number[] = [];
  const buf = new Uint8Array(256);
  Deno.stdin.setRaw(true);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const c of buf.subarray(0, n)) {
        if (c === 13 || c === 10) return new Uint8Array(out);
        if (c === 3) throw new Aborted(); // Ctrl-C
        if (c === 4 && out.length === 0) return new Uint8Array(0); // Ctrl-D
        if (c === 127 || c === 8) {
          // Remove one UTF-8 character: continuation bytes, then the lead byte.
          while (out.length && (out[out.length - 1] & 0xc0) === 0x80) out.pop();
          out.pop();
          continue;
        }
        if (out.length < MAX_LINE) out.push(c);
      }
      buf.fill(0);
    }
    return new Uint8Array(out);
  } finally {
    Deno.stdin.setRaw(false);
    buf.fill(0);
    write(Deno.stderr, "\n");
  }
}

/** The first line of standard input (without its line ending). */
async function readFirstLine(): Promise<Uint8Array> {
  const buf = new Uint8Array(MAX_LINE);
  let n = 0;
  while (n < buf.length) {
    const got = await Deno.stdin.read(buf.subarray(n));
    if (got === null) break;
    const lf = buf.subarray(n, n + got).indexOf(10);
    n += got;
    if (lf >= 0) {
      n = n - got + lf;
      break;
    }
  }
  if (n > 0 && buf[n - 1] === 13) n--;
  const line = buf.slice(0, n);
  buf.fill(0);
  return line;
}

interface CheckArgs {
  json: boolean;
  user: string;
  moduleArgs: string[];
}

function parseCheckArgs(argv: string[]): CheckArgs | string {
  let json = false;
  const positional: string[] = [];
  let options = true;
  for (const a of argv) {
    if (options && a === "--") options = false;
    else if (options && a === "--json") json = true;
    else if (options && a.startsWith("-") && a !== "-" && positional.length === 0) {
      return `unknown option ${JSON.stringify(a)}`;
    } else positional.push(a);
  }
  if (positional.length === 0) return "missing USER";
  return { json, user: positional[0], moduleArgs: positional.slice(1) };
}

const MARK: Record<string, string> = { true: "ok  ", false: "FAIL" };

function describeConfig(cfg: Config, caSource: string | null): string[] {
  const lines = [
    `sockets: ${cfg.sockets.map((s) => s.url).join(", ")}`,
    `timeout: ${cfg.timeout} s per server`,
    `features required: ${cfg.services ? cfg.services.join(" or ") : "none (service= not given)"}`,
  ];
  if (caSource) lines.push(`TLS trust: ${caSource}`);
  const flags = [
    cfg.quiet && "quiet",
    cfg.debug && "debug",
    cfg.ignoreAuthinfoUnavail && "ignore_authinfo_unavail",
  ].filter(Boolean);
  if (flags.length) lines.push(`options: ${flags.join(" ")}`);
  return lines;
}

function plainSummary(d: Decision): string {
  const lines = [`decision: ${d.reason}${d.feature ? ` (feature ${d.feature})` : ""}`];
  if (d.socket) lines.push(`answered by: ${d.socket}`);
  for (const f of d.failures) lines.push(`no answer: ${f}`);
  lines.push(`result: ${d.result} (exit ${exitCodeFor(d.result)})`);
  const logged = d.log.filter((l) => l.priority !== "debug");
  if (logged.length === 0) lines.push("syslog: nothing (quiet)");
  for (const l of logged) lines.push(`syslog ${l.priority}: ${l.message}`);
  return lines.join("\n") + "\n";
}

export async function runCheck(argv: string[]): Promise<number> {
  const parsed = parseCheckArgs(argv);
  if (typeof parsed === "string") {
    write(
      Deno.stderr,
      `pam_mapi_helper check: ${parsed}\nUsage: pam_mapi_helper check [--json] USER [MODULE-ARGS...]\n`,
    );
    return 3;
  }
  const { json, user, moduleArgs } = parsed;
  let prepared;
  try {
    prepared = await prepare(moduleArgs);
  } catch (e) {
    if (!(e instanceof ArgError || e instanceof SetupError)) throw e;
    const what = e instanceof ArgError ? "invalid module arguments" : "configuration error";
    if (json) {
      write(
        Deno.stdout,
        JSON.stringify({
          user,
          args: moduleArgs,
          error: `${what}: ${e.message}`,
          result: "PAM_SERVICE_ERR",
          exit: 3,
        }) + "\n",
      );
    } else {
      for (const l of launcherLog()) write(Deno.stderr, `pam_mapi_helper check: ${l.message}\n`);
      write(
        Deno.stderr,
        `pam_mapi_helper check: ${what}: ${e.message}\nresult: PAM_SERVICE_ERR (exit 3)\n`,
      );
    }
    return 3;
  }
  const { cfg, caCerts, caSource } = prepared;

  let password: Uint8Array;
  try {
    password = Deno.stdin.isTerminal()
      ? await readFromTerminal(`Password for ${showArg(user)}: `)
      : await readFirstLine();
  } catch (e) {
    if (e instanceof Aborted) {
      write(Deno.stderr, "pam_mapi_helper check: aborted\n");
      return 3;
    }
    throw e;
  }

  if (!json) {
    write(Deno.stdout, `checking user ${showArg(user)}\n`);
    for (const l of describeConfig(cfg, caSource)) write(Deno.stdout, `  ${l}\n`);
  }
  let current = "";
  const onStep = (s: Step) => {
    if (json) return;
    if (s.socket !== current) {
      current = s.socket;
      write(Deno.stdout, `socket ${s.socket}\n`);
    }
    write(Deno.stdout, `  ${MARK[String(s.ok)]} ${s.step.padEnd(8)} ${s.text}\n`);
  };
  const d = await authenticate(
    cfg,
    {
      user: enc.encode(user),
      password,
      service: enc.encode("check"),
      rhost: new Uint8Array(0),
    },
    caCerts,
    onStep,
  );
  password.fill(0);
  d.log.unshift(...launcherLog()); // what the module would log first, as in --pam
  const exit = exitCodeFor(d.result);
  if (json) {
    write(
      Deno.stdout,
      JSON.stringify({
        user,
        args: moduleArgs,
        sockets: cfg.sockets.map((s) => s.url),
        timeout: cfg.timeout,
        services: cfg.services,
        tls_trust: caSource,
        steps: d.steps,
        decision: { reason: d.reason, socket: d.socket, feature: d.feature, failures: d.failures },
        result: d.result,
        exit,
        log: d.log,
      }) + "\n",
    );
  } else {
    write(Deno.stdout, plainSummary(d));
  }
  return exit;
}
