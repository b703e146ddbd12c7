// Fault injection: ways a server (or what sits in front of it) can misbehave, so that client
// tests can see every failure path. A fault applies to one request (or one connection, for the
// connection-level kinds) and may be limited to one SOAP method, one transport and a number of
// uses.

export type Transport = "tcp" | "tls" | "unix";

export const FAULT_KINDS = [
  "delay", // VALUE ms (default 1000) before the request is served and answered
  "hang", // never answer; hold the connection open until the client or the sim closes it
  "drop", // read the request, close without any reply (like fixture d2)
  "close-mid-reply", // serve the request, send the headers and half the body, then close
  "garbage", // 200 text/xml with a body that is not XML at all
  "oversized", // 200 text/xml streaming VALUE bytes (default 100 MiB) of one endless element
  "http-500", // 500 with a SOAP-ENV:Server fault
  "http-503", // 503 Service Unavailable with an HTML body, as a proxy in front would send
  "wrong-content-type", // the real reply labelled VALUE (default text/html; charset=utf-8)
  "raw", // a custom reply: `reply` (status/headers/body, or verbatim bytes); then close
  "reset", // accept-time: accept the connection and close it at once
  "refuse", // while set: listeners closed, connect() fails (ECONNREFUSED, also on the UNIX path)
  // A kept-alive connection that already served a request is closed, without a reply, the moment
  // the next request starts to arrive: the race of kopano-server's idle close (its check runs once
  // a second) with a client reusing the connection. A new connection is served as usual.
  "close-reused",
] as const;

export type FaultKind = typeof FAULT_KINDS[number];

/** A custom reply for kind "raw". `bytes` is sent verbatim; otherwise one is built. */
export interface RawReply {
  status?: number; // default 200
  reason?: string; // default from the status
  /** Sent in this order; Content-Length is added unless a length or Transfer-Encoding is given. */
  headers?: Record<string, string> | Array<[string, string]>;
  body?: string | Uint8Array;
  bytes?: string | Uint8Array;
}

export interface Fault {
  kind: FaultKind;
  /** delay: milliseconds; oversized: bytes; wrong-content-type: the Content-Type. */
  value?: number | string;
  /** Only requests for this SOAP method (local name, e.g. "getUser"). */
  method?: string;
  /** Only connections on this transport. */
  transport?: Transport;
  /** Apply this many times, then never again (default: every time while set). */
  times?: number;
  /** For kind "raw". */
  reply?: RawReply;
}

// Kinds that act on a connection before any request is read (so no SOAP method is known).
const CONNECTION_KINDS: ReadonlySet<FaultKind> = new Set(["reset", "refuse", "close-reused"]);

export function isAcceptKind(kind: FaultKind): boolean {
  return CONNECTION_KINDS.has(kind);
}

/** Checks a fault and fills in defaults; throws with a message naming the problem. */
export function normalizeFault(f: Fault): Fault {
  if (!FAULT_KINDS.includes(f.kind)) {
    throw new Error(`unknown fault kind "${f.kind}" (one of ${FAULT_KINDS.join(", ")})`);
  }
  const out: Fault = { ...f };
  if (isAcceptKind(f.kind) && f.method !== undefined) {
    throw new Error(
      `fault ${f.kind} happens before a request is read: it cannot be limited to a method`,
    );
  }
  if (f.kind === "refuse" && f.times !== undefined) {
    throw new Error("fault refuse lasts until cleared: it takes no count");
  }
  if (f.times !== undefined && !(Number.isInteger(f.times) && f.times > 0)) {
    throw new Error(`fault ${f.kind}: times must be a positive integer`);
  }
  if (f.transport !== undefined && !["tcp", "tls", "unix"].includes(f.transport)) {
    throw new Error(`fault ${f.kind}: transport must be tcp, tls or unix`);
  }
  const num = (dflt: number) => {
    const v = f.value === undefined ? dflt : Number(f.value);
    if (!Number.isFinite(v) || v < 0) throw new Error(`fault ${f.kind}: bad value "${f.value}"`);
    return v;
  };
  switch (f.kind) {
    case "delay":
      out.value = num(1000);
      break;
    case "oversized":
      out.value = Math.floor(num(100 * 1024 * 1024));
      break;
    case "wrong-content-type":
      out.value = f.value === undefined ? "text/html; charset=utf-8" : String(f.value);
      break;
    case "raw":
      if (!f.reply) {
        throw new Error("fault raw needs a reply (API) or a file (raw=PATH on the command line)");
      }
      break;
  }
  return out;
}

/**
 * Parses the command-line form KIND[=VALUE][@METHOD][*TIMES][+TRANSPORT], e.g. "delay=500",
 * "http-503@getUser*2", "reset+unix". For raw, VALUE is a file with the verbatim reply bytes;
 * the caller reads it (this function does no I/O) and must set `reply`.
 */
export function parseFaultSpec(spec: string): Fault {
  const m =
    /^([a-z0-9-]+)(?:=([^@*+]*))?(?:@([A-Za-z_][A-Za-z0-9_]*))?(?:\*(\d+))?(?:\+(tcp|tls|unix))?$/
      .exec(spec);
  if (!m) throw new Error(`bad --fault "${spec}" (KIND[=VALUE][@METHOD][*TIMES][+TRANSPORT])`);
  const f: Fault = { kind: m[1] as FaultKind };
  if (m[2] !== undefined) f.value = /^\d+(\.\d+)?$/.test(m[2]) ? Number(m[2]) : m[2];
  if (m[3] !== undefined) f.method = m[3];
  if (m[4] !== undefined) f.times = Number(m[4]);
  if (m[5] !== undefined) f.transport = m[5] as Transport;
  if (f.kind === "raw") {
    if (typeof f.value !== "string" || f.value === "") {
      throw new Error("--fault raw=FILE needs a file");
    }
    f.reply = { bytes: "" }; // placeholder so that validation passes; the CLI fills it in
  }
  return normalizeFault(f);
}

interface Active {
  fault: Fault;
  left: number; // Infinity when unlimited
}

/** The faults currently set; `take` consumes one use of the first that matches. */
export class FaultSet {
  #active: Active[];
  constructor(faults: readonly Fault[] = []) {
    this.#active = faults.map((f) => ({ fault: normalizeFault(f), left: f.times ?? Infinity }));
  }

  #matches(a: Active, transport: Transport, method: string | null): boolean {
    const f = a.fault;
    return a.left > 0 && (f.transport === undefined || f.transport === transport) &&
      (f.method === undefined || f.method === method);
  }

  /** The fault for a request just read (method: SOAP method local name or null). */
  takeForRequest(transport: Transport, method: string | null): Fault | null {
    const a = this.#active.find((x) =>
      !isAcceptKind(x.fault.kind) && this.#matches(x, transport, method)
    );
    if (!a) return null;
    a.left--;
    return a.fault;
  }

  /** Uses one of a connection-level fault of this kind, if one is set for the transport. */
  #takeConnectionFault(kind: FaultKind, transport: Transport): boolean {
    const a = this.#active.find((x) => x.fault.kind === kind && this.#matches(x, transport, null));
    if (!a) return false;
    a.left--;
    return true;
  }

  /** Whether a connection just accepted must be reset. */
  takeReset(transport: Transport): boolean {
    return this.#takeConnectionFault("reset", transport);
  }

  /** Whether a kept-alive connection whose next request is arriving must be closed. */
  takeCloseReused(transport: Transport): boolean {
    return this.#takeConnectionFault("close-reused", transport);
  }

  refuses(transport: Transport): boolean {
    return this.#active.some((x) => x.fault.kind === "refuse" && this.#matches(x, transport, null));
  }
}
