// Check 2 of docs/protocol.md §7.2 for `pam_mapi_helper status`, by the proof of §7.4: the daemon
// set its socket's times to the value status chose, which only the socket's owner or root can do.
// The daemon holds the times it set for PROOF_HOLD_MS, for that query alone; so times that are not
// ours, looked at within that time of asking, were not set by whoever answered (refused), while
// times looked at later, or a "busy" answer, tell nothing (ask again): another user's queries
// cannot make a genuine daemon look refused.
import type { Reported } from "./status_fields.ts";
import { type DaemonStatus, PROOF_HOLD_MS } from "../daemon/status_query.ts";

/** The times must be looked at this much within the daemon's hold: clocks tick in steps. */
const PROOF_MARGIN_MS = 100;

export interface Proof {
  /** "refused": it failed the proof; "inconclusive": another query's proof was in the way (ask
   * again after retryMs); "broken": its report is too broken to judge by. */
  outcome: "proven" | "refused" | "inconclusive" | "broken";
  text: string;
  retryMs: number;
}

/** The proof for a query with `touch` sent at `sent` (performance.now()). */
export function provePeer(
  path: string,
  touch: number,
  sent: number,
  status: Reported<DaemonStatus>,
  trusted: Map<number, string>,
): Proof {
  const says = `it says pid ${status.pid}, uid ${status.uid}`;
  const result = (outcome: Proof["outcome"], text: string, retryMs = 0) => ({
    outcome,
    text,
    retryMs,
  });
  if (typeof status.uid !== "number" || typeof status.touch !== "string") {
    return result("broken", `its report names no valid uid or proof (touch); ${says}`);
  }
  if (status.touch.startsWith("busy:")) {
    // "busy: held for another status query's proof for N ms more": wait that long (bounded).
    const left = Number(/ for (\d+) ms more$/.exec(status.touch)?.[1] ?? PROOF_HOLD_MS);
    const wait = Math.min(Math.max(left, 0), PROOF_HOLD_MS) + 1 + Math.random() * 10;
    return result("inconclusive", "the daemon held its times for another query's proof", wait);
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    return result("broken", `cannot examine the socket again (${(e as Error).name}); ${says}`);
  }
  const looked = performance.now() - sent;
  const owner = info.uid ?? -1;
  if (status.touch !== "done" || info.mtime?.getTime() !== touch) {
    if (status.touch === "done" && looked >= PROOF_HOLD_MS - PROOF_MARGIN_MS) {
      return result(
        "inconclusive",
        `status looked at the socket's times ${Math.round(looked)} ms after asking, too late`,
        Math.random() * 50,
      );
    }
    return result(
      "refused",
      `it did not set the socket's times as asked (${
        status.touch.slice(0, 80)
      }): it cannot show it runs as the socket's owner or root; ${says}`,
    );
  }
  if (status.uid !== owner && status.uid !== 0) {
    return result("refused", `the socket belongs to uid ${owner}, but ${says}`);
  }
  const name = trusted.get(status.uid) ?? `uid ${status.uid}`;
  if (!trusted.has(status.uid)) return result("refused", `runs as ${name}; ${says}`);
  return result(
    "proven",
    `it set the socket's times as asked, which only its owner or root can: it runs as ` +
      `${name}; pid ${status.pid}`,
  );
}
