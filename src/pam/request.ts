// One request of the shim/helper protocol (docs/protocol.md §3) in, one reply (§4) out: the code
// that `--pam` runs on its standard input and `serve` runs on every connection, the very same.
import { ArgError } from "./args.ts";
import type { Connector } from "../kopano/attempt.ts";
import { authenticate } from "./authenticate.ts";
import { decodeRequest, encodeReply, ProtocolError } from "./protocol.ts";
import type { LogRecord, PamResult } from "./results.ts";
import { type CaLoader, prepare, SetupError } from "./setup.ts";

export interface RequestOptions {
  /** Drop the permissions the request's arguments do not need (a process per request). */
  narrow: boolean;
  /** Loads CA certificates (the resident helper caches them); default: from disk each time. */
  loadCa?: CaLoader;
  /** Connections to the servers for a CA set (the resident helper pools them); default: new ones. */
  connector?: (caIdentity: string | null) => Connector;
  /** Records that go first in every reply (the launcher's code-cache warning, src/pam/launch.ts). */
  lead?: LogRecord[];
}

export interface Handled {
  reply: string;
  result: PamResult;
  /** "login": a decoded request was decided; "malformed": not a request; "internal": a bug. */
  kind: "login" | "malformed" | "internal";
  /** For "internal": the kind of error (its name, never its message). */
  error?: string;
}

function serviceErr(message: string, lead: LogRecord[] = []): string {
  return encodeReply("PAM_SERVICE_ERR", [...lead, { priority: "err", message }]);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

async function decide(raw: Uint8Array, opts: RequestOptions): Promise<Handled> {
  const lead = opts.lead ?? [];
  let req;
  try {
    req = decodeRequest(raw);
  } catch (e) {
    if (e instanceof ProtocolError) {
      return {
        reply: serviceErr(`malformed request from pam_mapi.so: ${e.message}`, lead),
        result: "PAM_SERVICE_ERR",
        kind: "malformed",
      };
    }
    throw e;
  } finally {
    raw.fill(0); // held the password
  }
  const refuse = (message: string): Handled => ({
    reply: serviceErr(message, lead),
    result: "PAM_SERVICE_ERR",
    kind: "login",
  });
  try {
    let args: string[];
    try {
      args = req.args.map((a) => strictUtf8.decode(a));
    } catch {
      return refuse("invalid module arguments: an argument is not valid UTF-8");
    }
    let prepared;
    try {
      prepared = await prepare(args, { narrow: opts.narrow, loadCa: opts.loadCa });
    } catch (e) {
      if (e instanceof ArgError) return refuse(`invalid module arguments: ${e.message}`);
      if (e instanceof SetupError) return refuse(`configuration error: ${e.message}`);
      throw e;
    }
    const d = await authenticate(
      prepared.cfg,
      { user: req.user, password: req.authtok, service: req.service, rhost: req.rhost },
      prepared.caCerts,
      undefined,
      opts.connector?.(prepared.caIdentity),
    );
    return { reply: encodeReply(d.result, [...lead, ...d.log]), result: d.result, kind: "login" };
  } finally {
    req.authtok.fill(0);
  }
}

/** A bug, not a verdict: fail closed, and say what kind of error without its details. */
export function internalError(e: unknown): Handled {
  const error = e instanceof Error ? e.name : typeof e;
  return {
    reply: serviceErr(`internal error in pam_mapi_helper (${error})`),
    result: "PAM_SERVICE_ERR",
    kind: "internal",
    error,
  };
}

/** Decides one request; never throws: a bug becomes a PAM_SERVICE_ERR reply. */
export async function handleRequest(raw: Uint8Array, opts: RequestOptions): Promise<Handled> {
  try {
    return await decide(raw, opts);
  } catch (e) {
    raw.fill(0);
    return internalError(e);
  }
}
