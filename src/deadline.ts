// One deadline per server attempt (timeout=): it covers connect, TLS and every call. When it
// passes, everything registered with it is closed, so a pending read or write ends at once.

export class TimeoutError extends Error {
  constructor(seconds: number) {
    super(`timed out after ${seconds} s`);
    this.name = "TimeoutError";
  }
}

export class Deadline {
  readonly #controller = new AbortController();
  readonly #closers = new Set<() => void>();
  readonly #expiry: Promise<never>;
  #cancelled = false;
  readonly seconds: number;

  constructor(ms: number) {
    this.seconds = Math.round(ms / 100) / 10;
    let reject!: (e: Error) => void;
    this.#expiry = new Promise<never>((_, r) => (reject = r));
    this.#expiry.catch(() => {}); // observed through race(); never an unhandled rejection
    // AbortSignal.timeout, not setTimeout: the first setTimeout in a Deno process costs about
    // 4 ms of start-up, this about 0.3 ms. Its timer does not keep the process alive, which is
    // fine: we only wait on it while an I/O operation is pending.
    AbortSignal.timeout(ms).addEventListener("abort", () => {
      if (this.#cancelled) return;
      this.#controller.abort();
      for (const close of this.#closers) close();
      reject(new TimeoutError(this.seconds));
    });
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

  cancel(): void {
    this.#cancelled = true;
  }
}
