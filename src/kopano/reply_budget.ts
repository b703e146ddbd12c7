// What the Kopano replies in progress may take from the resident helper, whoever sends them:
// memory, and time on its only thread. A hostile server (or a local user who may use the daemon's
// socket and names a server of her own) must not be able to take either from the other logins.
//
// Memory: every reply in progress has an account. Its first REPLY_ALLOWANCE bytes are its own (a
// real logon or getUser reply is 1 to 2 KiB, the largest captured one 3.7 KiB); beyond that it takes
// from one pool, SHARED_REPLY_MEMORY, that all logins share. A reply that would take more than
// is left gets no answer: its login moves on to the next socket=, and at last to
// PAM_AUTHINFO_UNAVAIL. So the replies of 128 logins in progress hold at most
// 128 × 64 KiB + 16 MiB = 24 MiB, whatever they are, and a small reply is never refused.
//
// Time: a reply bigger than its allowance is decoded and parsed only in its turn, one such reply
// per turn of the event loop, so that a burst of big replies finishing at once cannot hold up the
// logins that are waiting for a few bytes each (docs/protocol.md §7.5).
import type { Connector } from "./attempt.ts";

export const REPLY_ALLOWANCE = 64 * 1024;
export const SHARED_REPLY_MEMORY = 16 * 1024 * 1024;

/** One reply's claim on memory (src/kopano/http_reader.ts charges its buffers to it). */
export interface ReplyAccount {
  /** Takes `n` more bytes; false (and nothing taken) when that would exceed the budget. */
  take(n: number): boolean;
  give(n: number): void;
  /** Resolves when a reply of `n` bytes may be decoded and parsed; null: at once. */
  turn(n: number): Promise<void> | null;
}

/** A process that serves one login (the fork path): MAX_BODY is bound enough. */
export const UNLIMITED: ReplyAccount = { take: () => true, give: () => {}, turn: () => null };

export class ReplyBudget {
  #shared = 0;
  #turns: Promise<void> = Promise.resolve();

  constructor(
    readonly sharedBytes = SHARED_REPLY_MEMORY,
    readonly allowance = REPLY_ALLOWANCE,
    /** Called when a reply is refused (the daemon logs it). */
    private onRefused: () => void = () => {},
  ) {}

  /** Bytes of the shared pool in use now. */
  get sharedInUse(): number {
    return this.#shared;
  }

  account(): ReplyAccount {
    let held = 0;
    /** What of `bytes` held lies beyond the allowance, that is in the shared pool. */
    const beyond = (bytes: number) => Math.max(0, bytes - this.allowance);
    return {
      take: (n) => {
        const more = beyond(held + n) - beyond(held);
        if (this.#shared + more > this.sharedBytes) {
          this.onRefused();
          return false;
        }
        this.#shared += more;
        held += n;
        return true;
      },
      give: (n) => {
        this.#shared -= beyond(held) - beyond(held - n);
        held -= n;
      },
      turn: (n) => n <= this.allowance ? null : this.#nextTurn(),
    };
  }

  /** One turn per event-loop turn: the next starts from a timer once this one was given. */
  #nextTurn(): Promise<void> {
    const mine = this.#turns.then(() => new Promise<void>((r) => setTimeout(r, 0)));
    this.#turns = mine;
    return mine;
  }
}

/** `connector` with this budget's accounts for the replies its connections carry. */
export function withReplyBudget(connector: Connector, budget: ReplyBudget): Connector {
  return (...args) => ({ ...connector(...args), replyAccount: () => budget.account() });
}
