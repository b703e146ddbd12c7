// What a daemon reports about itself (docs/protocol.md §7.4), checked field by field before
// `pam_mapi_helper status` shows it or judges by it: whoever answers on the socket may send
// anything. A count must be a non-negative integer, a number finite, text a string of at most 200
// characters. A field that is not what it should be becomes INVALID (shown "(invalid)", null in
// JSON) and is named among the invalid fields, which keep the verdict from "sends logins to this
// daemon". Fields not listed here are dropped. Text is still raw: the printer escapes it.
import type { PamResult } from "../pam/results.ts";
import { type DaemonStatus, PERMISSIONS } from "../daemon/status_query.ts";

type Kind = "text" | "count" | "number" | "number or null";
interface Shape {
  readonly [key: string]: Kind | Shape;
}

/** Stands for a field of the wrong type. */
export class Invalid {
  toString(): string {
    return "(invalid)";
  }
  toJSON(): null {
    return null;
  }
}
export const INVALID = new Invalid();

/** A report as checked: every value is what DaemonStatus says, or INVALID. */
export type Reported<T> = {
  [K in keyof T]: T[K] extends number | string | null ? T[K] | Invalid : Reported<T[K]>;
};

const MAX_TEXT = 200;
const LOGIN_RESULTS = [
  "PAM_SUCCESS",
  "PAM_AUTH_ERR",
  "PAM_AUTHINFO_UNAVAIL",
  "PAM_IGNORE",
  "PAM_SERVICE_ERR",
] as const satisfies readonly PamResult[];

const all = (keys: readonly string[], kind: Kind): Shape =>
  Object.fromEntries(keys.map((k) => [k, kind]));

const STATUS: Shape = {
  version: "text",
  pid: "count",
  uid: "count",
  socket: "text",
  started: "text",
  uptime_s: "number",
  limits: all(["in_progress", "request_bytes", "request_ms"], "count"),
  logins: all(LOGIN_RESULTS, "count"),
  ...all(["in_progress", "rejected_busy", "malformed", "late"], "count"),
  ...all(["internal_errors", "status_queries"], "count"),
  latency_ms: { p50: "number or null", p95: "number or null", samples: "count" },
  kopano_connections: all(["open", "idle", "opened", "reused"], "count"),
  ca_cache: all(["files", "bytes"], "count"),
  permissions: all(PERMISSIONS, "text"),
  memory_kb: all(["rss", "heap_total", "heap_used", "external"], "count"),
  touch: "text",
};

function fits(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case "text":
      return typeof v === "string" && v.length <= MAX_TEXT;
    case "count":
      return Number.isSafeInteger(v) && (v as number) >= 0;
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "number or null":
      return v === null || (typeof v === "number" && Number.isFinite(v));
  }
}

function check(raw: unknown, shape: Shape, path: string, invalid: string[]): unknown {
  const obj = typeof raw === "object" && raw !== null && !Array.isArray(raw)
    ? raw as Record<string, unknown>
    : {};
  const out: Record<string, unknown> = {};
  for (const [key, kind] of Object.entries(shape)) {
    const name = path ? `${path}.${key}` : key;
    const v = Object.hasOwn(obj, key) ? obj[key] : undefined;
    if (typeof kind === "object") {
      out[key] = check(v, kind, name, invalid);
    } else if (fits(v, kind)) {
      out[key] = v;
    } else {
      out[key] = INVALID;
      invalid.push(name);
    }
  }
  return out;
}

/** The report's known fields, each valid or INVALID, and the names of the invalid ones. */
export function checkStatus(raw: unknown): { status: Reported<DaemonStatus>; invalid: string[] } {
  const invalid: string[] = [];
  const status = check(raw, STATUS, "", invalid) as Reported<DaemonStatus>;
  return { status, invalid };
}
