// One deadline per server attempt (timeout=): it covers connect, TLS and every call. When it
// passes, everything registered with it is closed, so a pending read or write ends at once.

export class TimeoutError extends Error {
  constructor(seconds: number) {
    super(`timed out after ${seconds} s`);
    this.name = "TimeoutError";
  }
}

interface TimerLink {
  fire: (() => void) | null;
}

/**
 * Starts the timer. Its callback is made here, not in the constructor, so that it holds only the
 * link: V8 closures share their scope's context, and one made in the constructor would hold
 * `this` (and with it every promise raced against the deadline) until the timer fires.
 *
 * AbortSignal.timeout, not setTimeout, unless useCancellableTimers() was called: the first
 * setTimeout in a Deno process costs about 4 ms of start-up, this about 0.3 ms. Its timer does
 * not keep the process alive, which is fine: we only wait on it while an I/O operation is pending.
 */
function arm(ms: number, link: TimerLink): ReturnType<typeof setTimeout> | null {
  if (cancellable) return setTimeout(() => link.fire?.(), ms);
  AbortSignal.timeout(ms).addEventListener("abort", () => link.fire?.());
  return null;
}

let cancellable = false;

/**
 * For the resident helper: timers that cancel() stops, instead of AbortSignal.timeout's, which
 * run to their end (up to 300 s each, thousands at a time). A process per login keeps the cheaper
 * start-up of the latter.
 */
export function useCancellableTimers(): void {
  cancellable = true;
}

export class Deadline {
  readonly #controller = new AbortController();
  readonly #closers = new Set<() => void>();
  readonly #expiry: Promise<never>;
  #cancelled = false;
  /** The timer reaches this deadline only through this; cancel() cuts it (see there). */
  readonly #link: TimerLink = { fire: () => this.#expire() };
  readonly #timer: ReturnType<typeof setTimeout> | null;
  #reject!: (e: Error) => void;
  readonly seconds: number;

  constructor(ms: number) {
    this.seconds = Math.round(ms / 100) / 10;
    this.#expiry = new Promise<never>((_, r) => (this.#reject = r));
    this.#expiry.catch(() => {}); // observed through race(); never an unhandled rejection
    this.#timer = arm(ms, this.#link);
  }

  #expire(): void {
    if (this.#cancelled) return;
    this.#controller.abort();
    for (const close of this.#closers) close();
    this.#reject(new TimeoutError(this.seconds));
  }

  get expired(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Aborted when the deadline passes (for Deno.connect). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Runs `close` when the deadline passes; returns a function that unregisters it. */
  onExpire(close: () => void): () => void {
    this.#closers.add(close);
    return () => this.#closers.delete(close);
  }

  /** Settles like `p`, or rejects with TimeoutError when the deadline passes first. */
  race<T>(p: Promise<T>): Promise<T> {
    if (this.expired) return Promise.reject(new TimeoutError(this.seconds));
    return Promise.race([p, this.#expiry]);
  }

  /** Throws TimeoutError if the deadline has passed (after an I/O call returned). */
  check(): void {
    if (this.expired) throw new TimeoutError(this.seconds);
  }

  /**
   * The deadline no longer matters. The timer cannot be stopped, but it lets go of this object,
   * so that what the deadline's promises hold can be freed before the timer fires (a resident
   * helper runs thousands of deadlines of up to 300 s).
   */
  cancel(): void {
    this.#cancelled = true;
    this.#link.fire = null;
    if (this.#timer !== null) clearTimeout(this.#timer);
  }
}
