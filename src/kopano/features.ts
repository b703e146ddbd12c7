// The service= decision on the feature lists of a getUser reply. A real server computes both lists
// itself (docs/kopano.md §4): every feature it knows lands in exactly one of them, and every server
// generation knows imap and pop3. A reply that breaks this is not an answer the helper understands,
// so it fails closed as "no answer" instead of being read as "enabled".
import { asciiLower } from "../common/ascii.ts";

export type FeatureVerdict =
  /** The first required feature (in service= order) that is enabled. */
  | { kind: "enabled"; feature: string }
  /** Every required feature is in the disabled list. */
  | { kind: "disabled" }
  /** The lists are not what a server sends, or cannot answer the question; `reason` is log-safe. */
  | { kind: "unreadable"; reason: string };

/** Known to every server generation from Zarafa 7.1 on (docs/kopano.md §4), hence always listed. */
const ALWAYS_KNOWN = ["imap", "pop3"];

/**
 * `required`: the lower-case service= names. "Enabled" means not in the disabled list, compared
 * ASCII case-insensitively like Kopano's gateways do (docs/kopano.md §4); a required feature that is
 * in neither list is one the server does not know (Zarafa 7 knows no mobile, outlook or webapp).
 */
export function decideFeatures(
  required: readonly string[],
  enabled: readonly string[] | null,
  disabled: readonly string[] | null,
): FeatureVerdict {
  if (enabled === null && disabled === null) {
    return {
      kind: "unreadable",
      reason: "the user object has neither an enabled nor a disabled feature list",
    };
  }
  const on = new Set(enabled ?? []);
  const off = new Set(disabled ?? []);
  // Exact comparison: the server's sets are case-sensitive, so "IMAP" enabled next to "imap"
  // disabled is a genuine reply (a user override spelled differently from disabled_features).
  const both = [...on].find((f) => off.has(f));
  if (both !== undefined) {
    return {
      kind: "unreadable",
      reason: `feature ${quote(both)} is in both the enabled and the disabled list`,
    };
  }
  const missing = ALWAYS_KNOWN.find((f) => !on.has(f) && !off.has(f));
  if (missing !== undefined) {
    return {
      kind: "unreadable",
      reason: `feature ${missing}, which every server knows, is in neither list`,
    };
  }
  const offLower = new Set([...off].map(asciiLower));
  const onLower = new Set([...on].map(asciiLower));
  const feature = required.find((f) => !offLower.has(f) && onLower.has(f));
  if (feature !== undefined) return { kind: "enabled", feature };
  const unknown = required.find((f) => !offLower.has(f));
  if (unknown !== undefined) {
    return {
      kind: "unreadable",
      reason: `the server does not list feature ${unknown} as enabled or disabled ` +
        "(it may not know it: mobile needs Kopano 8.0, outlook 8.1, webapp 8.6)",
    };
  }
  return { kind: "disabled" };
}

/** A server-sent feature name for a log line: quoted and cut short (the caller cleans it). */
function quote(name: string): string {
  return JSON.stringify(name.length > 40 ? name.slice(0, 40) + "..." : name);
}
