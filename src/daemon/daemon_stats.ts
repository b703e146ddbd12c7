// The resident helper's counters for `pam_mapi_helper status`: logins by result, requests in
// progress, refused and dropped ones, and the latency of recent logins. Nothing about who logged
// in: no user names, no addresses.
import type { PamResult } from "../pam/results.ts";

/** How many recent logins the percentiles cover. */
export const LATENCY_WINDOW = 1000;

export type LoginCounts = Record<PamResult, number>;

export class DaemonStats {
  readonly logins: LoginCounts = {
    PAM_SUCCESS: 0,
    PAM_AUTH_ERR: 0,
    PAM_AUTHINFO_UNAVAIL: 0,
    PAM_IGNORE: 0,
    PAM_SERVICE_ERR: 0,
  };
  /** Connections accepted and not yet answered and closed. */
  inProgress = 0;
  /** Answered "busy" without reading the request (the in-progress limit was reached). */
  rejectedBusy = 0;
  /** Not a request (PAM_SERVICE_ERR reply). */
  malformed = 0;
  /** The request did not arrive completely in time (PAM_SERVICE_ERR reply). */
  late = 0;
  /** A bug turned into a PAM_SERVICE_ERR reply. */
  internalErrors = 0;
  statusQueries = 0;
  #latency = new Float64Array(LATENCY_WINDOW);
  #samples = 0;

  /** A login was decided in `ms` (from the end of its request to its reply). */
  login(result: PamResult, ms: number): void {
    this.logins[result]++;
    this.#latency[this.#samples % LATENCY_WINDOW] = ms;
    this.#samples++;
  }

  /** p50 and p95 over the last LATENCY_WINDOW logins (null before the first). */
  percentiles(): { p50: number | null; p95: number | null; samples: number } {
    const n = Math.min(this.#samples, LATENCY_WINDOW);
    if (n === 0) return { p50: null, p95: null, samples: 0 };
    const sorted = this.#latency.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)];
    return { p50: at(0.5), p95: at(0.95), samples: n };
  }
}
