// Buffered reading from a connection with a hard cap on what may be buffered, so a misbehaving
// client cannot make the sim hold unbounded data. Read errors (reset, closed by a timer, TLS
// failure) count as end of input: the connection layer then just closes.

export class ByteReader {
  #buf = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  #eof = false;

  constructor(private conn: Deno.Conn, private cap: number) {}

  get buffered(): number {
    return this.#end - this.#start;
  }

  get eof(): boolean {
    return this.#eof;
  }

  /** A view of the buffered bytes (valid until the next fill/consume). */
  peek(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  consume(n: number): Uint8Array {
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return out;
  }

  /** Reads more; false at end of input or when the cap is reached. */
  async fill(): Promise<boolean> {
    if (this.#eof) return false;
    if (this.buffered >= this.cap) return false;
    if (this.#end === this.#buf.length) {
      const live = this.buffered;
      if (this.#start > 0 && live < this.#buf.length / 2) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const bigger = new Uint8Array(
          Math.min(Math.max(this.#buf.length * 2, 16 * 1024), this.cap + 16 * 1024),
        );
        bigger.set(this.peek());
        this.#buf = bigger;
      }
      this.#start = 0;
      this.#end = live;
    }
    let n: number | null;
    try {
      n = await this.conn.read(this.#buf.subarray(this.#end));
    } catch {
      n = null;
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    this.#end += n;
    return true;
  }

  /** Skips CR, LF, space and tab; false if input ended first. */
  async skipBlanks(): Promise<boolean> {
    for (;;) {
      const view = this.peek();
      let i = 0;
      while (
        i < view.length &&
        (view[i] === 0x20 || view[i] === 0x09 || view[i] === 0x0A || view[i] === 0x0D)
      ) {
        i++;
      }
      if (i > 0) this.consume(i);
      if (this.buffered > 0) return true;
      if (!await this.fill()) return false;
    }
  }

  /**
   * One line without its CR LF. "eof": input ended before a line end (the partial line is in
   * `line`); "long": longer than `max` bytes.
   */
  async readLine(max: number): Promise<{ line: string; end: "lf" | "eof" | "long" }> {
    for (;;) {
      const view = this.peek();
      const lf = view.indexOf(0x0A);
      if (lf !== -1 && lf <= max) {
        const raw = this.consume(lf + 1);
        const len = lf > 0 && raw[lf - 1] === 0x0D ? lf - 1 : lf;
        return { line: new TextDecoder().decode(raw.subarray(0, len)), end: "lf" };
      }
      if (view.length > max) return { line: "", end: "long" };
      if (!await this.fill()) {
        return { line: new TextDecoder().decode(this.consume(this.buffered)), end: "eof" };
      }
    }
  }

  /** Exactly n bytes, or what arrived before the input ended (shorter). */
  async readExact(n: number): Promise<Uint8Array> {
    while (this.buffered < n) {
      if (!await this.fill()) break;
    }
    return this.consume(Math.min(n, this.buffered));
  }
}
