// The resident helper under load and abuse (docs/protocol.md §7.3): many logins at once, each
// with its own deadline, a hanging server blocking nobody else; the in-progress limit and its
// busy reply; clients that send nothing, trickle, send too much, garbage or half a request, or go
// away; and the daemon serving normally after each of them.
import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { pamRequest } from "../lib/helper.ts";
import { ask, login, startDaemon, status } from "./lib.ts";

const BUSY = '{"v":1,"result":"PAM_AUTHINFO_UNAVAIL","log":[{"priority":"err","message":' +
  '"pam_mapi daemon busy: 128 requests in progress; login not checked"}]}';
/** The same, for a request whose first bytes (up to the user) had arrived. */
const busyFor = (user: string) => BUSY.replace('not checked"', `not checked; user=${user}"`);
const enc = new TextEncoder();

Deno.test("limits: 64 logins at once against a hanging server do not hold up 60 against another", async () => {
  await using slow = await startKopanoSim({ faults: [{ kind: "hang" }], maxLoggedRequests: 200 });
  await using fast = await startKopanoSim({ maxLoggedRequests: 200 });
  await using d = await startDaemon();
  const t0 = performance.now();
  const stuck = Array.from({ length: 64 }, (_, i) =>
    login(d.socket, {
      user: `user${i}`,
      password: "secret",
      args: [`socket=${slow.urls.http[0]}`, "timeout=3"],
    }).then((r) => ({ r, ms: performance.now() - t0 })));
  await new Promise((r) => setTimeout(r, 300));
  const s = await status(d.socket);
  assert.equal(s.in_progress, 65, "64 logins waiting on the hanging server, and this query");
  const t1 = performance.now();
  const quick = await Promise.all(
    Array.from({ length: 60 }, (_, i) =>
      login(d.socket, {
        user: i % 2 ? "alice" : "bob",
        password: i % 2 ? "secret" : "bobpass",
        args: [`socket=${fast.urls.http[0]}`],
      })),
  );
  const quickMs = performance.now() - t1;
  assert.deepEqual(quick.map((r) => r.result), Array(60).fill("PAM_SUCCESS"));
  assert.ok(quickMs < 2500, `60 logins took ${quickMs} ms while 64 others hung`);
  const done = await Promise.all(stuck);
  for (const { r, ms } of done) {
    assert.equal(r.result, "PAM_AUTHINFO_UNAVAIL");
    assert.match(r.log.at(-1)!.message, /timed out after 3 s/);
    assert.ok(ms >= 2900 && ms < 6000, `each ended at its own deadline: ${ms} ms`);
  }
  assert.equal(fast.openSessions(), 0);
});

Deno.test("limits: the 129th request in progress gets the busy reply at once, then all is well", async () => {
  await using sim = await startKopanoSim({ faults: [{ kind: "hang" }], maxLoggedRequests: 200 });
  await using d = await startDaemon();
  const req = pamRequest({
    user: "alice",
    password: "secret",
    args: [`socket=${sim.urls.http[0]}`, "timeout=3"],
  });
  const held = Array.from({ length: 128 }, () => ask(d.socket, req));
  await new Promise((r) => setTimeout(r, 500));
  // A client that sends its request and shuts down, and one that has not sent anything yet: both
  // read the busy reply and a clean end of stream, at once; the first's names its user.
  const busy = await ask(d.socket, req);
  assert.equal(busy.text, busyFor("alice"));
  assert.equal(busy.end, "eof");
  assert.ok(busy.ms < 500, `${busy.ms} ms`);
  // A user name as any other user= field: control and invisible characters neutralised, quoted.
  const odd = await ask(d.socket, pamRequest({ user: 'ev"il \x1b[2J\u202eme', password: "x" }));
  assert.equal(
    JSON.parse(odd.text).log[0].message,
    'pam_mapi daemon busy: 128 requests in progress; login not checked; user="ev\\"il ?[2J?me"',
  );
  const conn = await Deno.connect({ transport: "unix", path: d.socket });
  const buf = new Uint8Array(4096);
  const n = await conn.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), BUSY, "before a byte was sent");
  await conn.write(enc.encode(req)); // the request still goes through (it is drained)
  await conn.closeWrite();
  assert.equal(await conn.read(buf), null, "then end of stream");
  conn.close();
  const results = await Promise.all(held);
  assert.ok(results.every((r) => JSON.parse(r.text).result === "PAM_AUTHINFO_UNAVAIL"));
  await sim.clearFaults();
  const after = await login(d.socket, {
    user: "alice",
    password: "secret",
    args: [`socket=${sim.urls.http[0]}`],
  });
  assert.equal(after.result, "PAM_SUCCESS");
  const s = await status(d.socket);
  assert.equal(s.rejected_busy, 3);
  assert.deepEqual(s.logins, {
    PAM_SUCCESS: 1,
    PAM_AUTH_ERR: 0,
    PAM_AUTHINFO_UNAVAIL: 128,
    PAM_IGNORE: 0,
    PAM_SERVICE_ERR: 0,
  });
  // One log line for both busy replies (at most one a minute), naming no user.
  const { log } = await d.stop();
  assert.equal(log.match(/busy: 128 requests in progress/g)?.length, 1, log);
});

Deno.test("limits: a client that sends nothing or trickles is answered and dropped after 2 s", async () => {
  await using sim = await startKopanoSim();
  await using d = await startDaemon();
  const req = enc.encode(
    pamRequest({ user: "alice", password: "secret", args: [`socket=${sim.urls.http[0]}`] }),
  );
  // Silent: connects, never sends, never shuts down.
  const silent = ask(d.socket, new Uint8Array(0), { shutdown: false });
  // Trickling: one byte every 100 ms, never finishing.
  const trickle = (async () => {
    const t0 = performance.now();
    const conn = await Deno.connect({ transport: "unix", path: d.socket });
    const reading = (async () => {
      const parts: number[] = [];
      const b = new Uint8Array(4096);
      for (;;) {
        const n = await conn.read(b).catch(() => null);
        if (n === null) {
          return {
            text: new TextDecoder().decode(new Uint8Array(parts)),
            ms: performance.now() - t0,
          };
        }
        parts.push(...b.subarray(0, n));
      }
    })();
    for (let i = 0; i < 40; i++) {
      try {
        await conn.write(req.subarray(i, i + 1));
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await reading;
    conn.close();
    return r;
  })();
  // Meanwhile the daemon serves others without delay.
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) {
    assert.equal(
      (await login(d.socket, {
        user: "alice",
        password: "secret",
        args: [`socket=${sim.urls.http[0]}`],
      })).result,
      "PAM_SUCCESS",
    );
  }
  assert.ok(performance.now() - t0 < 1500);
  for (const r of [await silent, await trickle]) {
    const reply = JSON.parse(r.text);
    assert.equal(reply.result, "PAM_SERVICE_ERR");
    assert.deepEqual(reply.log, [{ priority: "err", message: "request not received in time" }]);
    assert.ok(r.ms >= 1900 && r.ms < 3500, `dropped after ${r.ms} ms`);
  }
  const s = await status(d.socket);
  assert.equal(s.late, 2);
  assert.equal(s.in_progress, 1);
});

Deno.test("limits: a request not received in time names its user when its first bytes had come", async () => {
  await using d = await startDaemon();
  /** Sends `bytes`, never ends the request, and reads the reply the deadline brings. */
  const stall = async (bytes: string) => {
    const r = await ask(d.socket, bytes, { shutdown: false });
    assert.equal(r.end, "eof");
    assert.ok(r.ms >= 1900 && r.ms < 3500, `answered after ${r.ms} ms`);
    const reply = JSON.parse(r.text);
    assert.equal(reply.result, "PAM_SERVICE_ERR");
    return reply.log.map((l: { message: string }) => l.message);
  };
  const full = (user: string) => pamRequest({ user, password: "secret", args: [] });
  const [alice, odd, cut, other] = await Promise.all([
    stall(full("alice").slice(0, 60)), // the user and part of the password
    stall(full('ev"il \x1b[2J\u202eme').slice(0, 80)),
    stall(full("alice").slice(0, 20)), // not even the whole user
    stall(`{"user":"${btoa("alice")}",`), // not the module's layout: not read
  ]);
  assert.deepEqual(alice, ["request not received in time; user=alice"]);
  assert.deepEqual(odd, ['request not received in time; user="ev\\"il ?[2J?me"']);
  assert.deepEqual(cut, ["request not received in time"]);
  assert.deepEqual(other, ["request not received in time"]);
  assert.equal((await status(d.socket)).late, 4);
  // Its own log still names nobody.
  const { log } = await d.stop();
  assert.doesNotMatch(log, /alice|ev"il/);
});

Deno.test("limits: oversized, malformed, half-sent and abandoned requests; the next one is served", async () => {
  await using sim = await startKopanoSim();
  await using d = await startDaemon();
  const args = [`socket=${sim.urls.http[0]}`];
  const good = () => login(d.socket, { user: "alice", password: "secret", args });
  const full = pamRequest({ user: "alice", password: "secret", args });
  const cases: [string | Uint8Array, RegExp][] = [
    ["x".repeat(65_537), /request larger than 65536 bytes/],
    [full.slice(0, full.length / 2), /request is not valid JSON/],
    [crypto.getRandomValues(new Uint8Array(4096)), /not valid UTF-8|not valid JSON/],
    ["", /not valid JSON/],
    [full + full, /not valid JSON/],
    [`${full}\n`, /^$/], // a trailing newline is allowed: a login
  ];
  for (const [bytes, re] of cases) {
    const r = await ask(d.socket, bytes);
    assert.equal(r.end, "eof", `clean end of stream after the reply (${String(re)})`);
    const reply = JSON.parse(r.text);
    if (re.source === "^$") assert.equal(reply.result, "PAM_SUCCESS");
    else {
      assert.equal(reply.result, "PAM_SERVICE_ERR");
      assert.match(reply.log[0].message, re);
    }
    assert.equal((await good()).result, "PAM_SUCCESS");
  }
  // Megabytes: the daemon answers after 64 KiB and reads a little more, then closes; the client
  // may see its writes fail. The daemon does not care.
  const huge = await ask(d.socket, new Uint8Array(3 * 1024 * 1024).fill(0x41));
  assert.ok(huge.text === "" || /request larger than 65536 bytes/.test(huge.text), huge.text);
  assert.equal((await good()).result, "PAM_SUCCESS");
  // A client that sends half a request and goes away without waiting for the reply.
  for (let i = 0; i < 20; i++) {
    const c = await Deno.connect({ transport: "unix", path: d.socket });
    await c.write(enc.encode(full.slice(0, 30)));
    c.close();
  }
  // And one that sends everything, then closes without reading.
  const c = await Deno.connect({ transport: "unix", path: d.socket });
  await c.write(enc.encode(full));
  c.close();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await good()).result, "PAM_SUCCESS");
  const s = await status(d.socket);
  assert.equal(s.in_progress, 1, "nothing left hanging");
  assert.equal(s.malformed, 6 + 20, "each malformed request and each abandoned one");
  assert.equal(s.internal_errors, 0);
  assert.equal(sim.openSessions(), 0);
});
