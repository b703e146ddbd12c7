// An idle kept-alive connection must stay silent: the server has nothing to say until it gets a
// request. So while a connection waits in the pool, one read is kept pending on it; whatever that
// read gets (a byte, the end of the stream, an error) spoils the connection, and the pool closes
// it instead of lending it out, where the bytes would be taken for the next login's reply (a
// server that refused alice and then pushed a success would let the next login in). A lent
// connection's first read takes over the pending read, so nothing is lost on a clean one.
import type { Link } from "../kopano/http.ts";

/** The read kept pending on an idle connection. */
export class Watch {
  readonly #byte = new Uint8Array(1);
  readonly #result: Promise<number | null>;
  constructor(conn: Link, onDone: () => void) {
    this.#result = conn.read(this.#byte);
    this.#result.then(onDone, onDone);
  }

  /** The pending read's result, into `p` (at least one byte long). */
  async takeOver(p: Uint8Array): Promise<number | null> {
    const n = await this.#result;
    if (n === null || n === 0) return n;
    p[0] = this.#byte[0];
    return 1;
  }
}

/** A pooled connection lent to one login: its first read is the watch's. */
export class Lent implements Link {
  #watch: Watch | null;

  constructor(readonly conn: Link, watch: Watch) {
    this.#watch = watch;
  }

  /** Whether the watch's read was taken over (only then may the connection be watched again). */
  get readFrom(): boolean {
    return this.#watch === null;
  }

  read(p: Uint8Array): Promise<number | null> {
    const watch = this.#watch;
    if (watch === null) return this.conn.read(p);
    this.#watch = null;
    return watch.takeOver(p);
  }

  write(p: Uint8Array): Promise<number> {
    return this.conn.write(p);
  }

  close(): void {
    this.conn.close();
  }
}
