// `pam_mapi_helper --pam`: one request from the shim on stdin, one reply on stdout, exit 0
// (docs/protocol.md). Never prompts, never writes anything else to stdout.
import { ArgError } from "./args.ts";
import { authenticate } from "./authenticate.ts";
import { launcherLog } from "./launch.ts";
import { decodeRequest, encodeReply, MAX_REQUEST, ProtocolError } from "./protocol.ts";
import type { LogRecord, PamResult } from "./results.ts";
import { prepare, SetupError } from "./setup.ts";

/**
 * Reads stdin to the end, but never more than limit + 1 bytes (enough to see it is too long).
 * Synchronously: nothing else can happen before the request is in, and the first asynchronous
 * read in a Deno process costs about 0.3 ms more than readSync, on every login.
 */
function readLimited(limit: number): Uint8Array {
  const buf = new Uint8Array(limit + 1);
  let n = 0;
  while (n < buf.length) {
    const got = Deno.stdin.readSync(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return buf.subarray(0, n);
}

/** The reply, with the launcher's warning (if any) first. */
function withLauncherLog(result: PamResult, log: LogRecord[]): string {
  return encodeReply(result, [...launcherLog(), ...log]);
}

function serviceErr(message: string): string {
  return withLauncherLog("PAM_SERVICE_ERR", [{ priority: "err", message }]);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

async function handle(raw: Uint8Array): Promise<string> {
  let req;
  try {
    req = decodeRequest(raw);
  } catch (e) {
    if (e instanceof ProtocolError) {
      return serviceErr(`malformed request from pam_mapi.so: ${e.message}`);
    }
    throw e;
  } finally {
    raw.fill(0); // held the password
  }
  try {
    let args: string[];
    try {
      args = req.args.map((a) => strictUtf8.decode(a));
    } catch {
      return serviceErr("invalid module arguments: an argument is not valid UTF-8");
    }
    let prepared;
    try {
      prepared = await prepare(args);
    } catch (e) {
      if (e instanceof ArgError) return serviceErr(`invalid module arguments: ${e.message}`);
      if (e instanceof SetupError) return serviceErr(`configuration error: ${e.message}`);
      throw e;
    }
    const d = await authenticate(prepared.cfg, {
      user: req.user,
      password: req.authtok,
      service: req.service,
      rhost: req.rhost,
    }, prepared.caCerts);
    return withLauncherLog(d.result, d.log);
  } finally {
    req.authtok.fill(0);
  }
}

export async function runPam(): Promise<number> {
  let reply: string;
  try {
    reply = await handle(readLimited(MAX_REQUEST));
  } catch (e) {
    // A bug, not a verdict: fail closed, and say what kind of error without its details.
    const kind = e instanceof Error ? e.name : typeof e;
    reply = serviceErr(`internal error in pam_mapi_helper (${kind})`);
  }
  const out = new TextEncoder().encode(reply);
  let off = 0;
  while (off < out.length) off += Deno.stdout.writeSync(out.subarray(off));
  return 0;
}
