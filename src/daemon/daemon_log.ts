// The resident helper's own log: standard error, which systemd sends to the journal. A line at
// start and at stop, and at most one line a minute for each kind of trouble (busy, internal
// error), with a count of what was not logged. Never a line per login, never a user or password.

const enc = new TextEncoder();
const EVERY_MS = 60_000;

export class DaemonLog {
  #last = new Map<string, { at: number; suppressed: number }>();

  line(text: string): void {
    try {
      Deno.stderr.writeSync(enc.encode(`pam_mapi_helper serve: ${text}\n`));
    } catch {
      // no log to write to: carry on serving
    }
  }

  /** Logs `text` unless a line of this kind went out less than a minute ago. */
  limited(kind: string, text: string): void {
    const now = Date.now();
    const last = this.#last.get(kind);
    if (last && now - last.at < EVERY_MS) {
      last.suppressed++;
      return;
    }
    const more = last?.suppressed ? ` (${last.suppressed} more since the last such line)` : "";
    this.#last.set(kind, { at: now, suppressed: 0 });
    this.line(text + more);
  }
}
