// The resident helper's budget for replies in progress (src/kopano/reply_budget.ts): what each reply
// may hold on its own, what they share, that a reply over it is refused (no answer) while small
// replies still go through, that everything is given back however a reply ends, and that big
// replies take turns.
import assert from "node:assert/strict";
import { parseSocket } from "../../src/pam/args.ts";
import { freshConnections } from "../../src/kopano/attempt.ts";
import { Deadline } from "../../src/common/deadline.ts";
import { Channel, HttpError } from "../../src/kopano/http.ts";
import { ReplyBudget } from "../../src/kopano/reply_budget.ts";
import { httpReply, startRawServer } from "../lib/raw_server.ts";

const KIB = 1024;
const enc = new TextEncoder();

Deno.test("reply budget: each reply's own allowance, then the shared pool, refused past it", () => {
  let refusals = 0;
  const b = new ReplyBudget(100 * KIB, 64 * KIB, () => refusals++);
  const a = b.account();
  const c = b.account();
  assert.ok(a.take(64 * KIB), "a's allowance");
  assert.ok(c.take(64 * KIB), "c's allowance: the pool is not touched");
  assert.equal(b.sharedInUse, 0);
  assert.ok(a.take(60 * KIB));
  assert.equal(b.sharedInUse, 60 * KIB);
  assert.ok(!c.take(41 * KIB), "60 + 41 KiB is more than the 100 KiB shared");
  assert.equal(refusals, 1);
  assert.equal(b.sharedInUse, 60 * KIB, "a refusal takes nothing");
  assert.ok(c.take(40 * KIB), "exactly what is left");
  assert.equal(b.sharedInUse, 100 * KIB);
  assert.ok(!a.take(1));
  // Giving back comes out of the shared part first, then the allowance.
  a.give(100 * KIB);
  assert.equal(b.sharedInUse, 40 * KIB);
  a.give(24 * KIB);
  c.give(104 * KIB);
  assert.equal(b.sharedInUse, 0);
  assert.equal(refusals, 2);
});

Deno.test("reply budget: replies within the allowance never wait; bigger ones take turns in order", async () => {
  const b = new ReplyBudget(1024 * KIB, 64 * KIB);
  const a = b.account();
  assert.equal(a.turn(64 * KIB), null);
  const order: string[] = [];
  const turns = ["first", "second", "third"].map((name) =>
    a.turn(65 * KIB)!.then(() => {
      order.push(name);
      // Work that the first big reply's handling makes ready (another login's I/O, say) runs
      // before the second big reply is handled, not after all of them.
      if (name === "first") setTimeout(() => order.push("other"), 0);
    })
  );
  await Promise.all(turns);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(order, ["first", "other", "second", "third"]);
});

/** A Channel to `url` whose replies are charged to `budget`. */
function channel(url: string, budget: ReplyBudget, ms = 5000) {
  const spec = parseSocket(url);
  const deadline = new Deadline(ms);
  const source = {
    ...freshConnections(spec, undefined, deadline, () => {}),
    replyAccount: () => budget.account(),
  };
  return { ch: new Channel(source, spec, deadline), deadline };
}

Deno.test("reply budget through the HTTP client: a reply over the pool gets no answer, small ones still do, all given back", async () => {
  const big = 600 * KIB;
  const stalledBig = {
    stream: async (w: (b: Uint8Array) => Promise<void>) => {
      await w(enc.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${big}\r\n\r\n`));
      await w(new Uint8Array(big - 1).fill(0x20)); // then nothing: held until the deadline
      await new Promise((r) => setTimeout(r, 3000));
    },
  };
  const small = httpReply("<small/>");
  const server = await startRawServer((req) => req.body === "<big/>" ? stalledBig : small);
  // A 600 KiB body grows by doubling to 512 KiB, then to its 600 KiB: while it moves, both
  // buffers and the 16 KiB window are held, 1128 KiB, 1064 KiB of it beyond the allowance.
  // Alone it fits in 1536 KiB; next to another one, which keeps 552 KiB, it does not.
  const budget = new ReplyBudget(1536 * KIB, 64 * KIB);
  try {
    const first = channel(server.url, budget, 1500);
    const held = first.ch.post("<big/>").catch((e) => e);
    while (budget.sharedInUse === 0) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(budget.sharedInUse, 552 * KIB);
    const second = channel(server.url, budget);
    await assert.rejects(
      second.ch.post("<big/>"),
      (e: Error) => e instanceof HttpError && /memory for replies in progress/.test(e.message),
    );
    second.deadline.cancel();
    const third = channel(server.url, budget);
    assert.equal((await third.ch.post("<small/>")).body, "<small/>", "a small reply still goes");
    third.ch.close();
    third.deadline.cancel();
    // The held one ends at its deadline, and gives everything back.
    assert.match(String(await held), /timed out/);
    first.deadline.cancel();
    assert.equal(budget.sharedInUse, 0);
  } finally {
    await server.close();
  }
});
