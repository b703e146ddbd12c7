// The sim's keep-alive behaviour as kopano-server has it
// (docs/kopano.md#7-keep-alive-and-idle-timeouts), seen through its connection record: one
// connection serves many requests, TLS handshakes are counted, and every way a connection ends is
// named; and the close-reused fault, the server's idle-close race.

import assert from "node:assert/strict";
import { parseFaultSpec } from "../kopano_sim/mod.ts";
import { call, parse, withConn } from "./lib/calls.ts";
import { simEnv, TRANSPORTS } from "./lib/env.ts";
import { exchange, RawConn } from "./lib/raw_http.ts";
import { field, getUser, logoff, logon, post } from "./lib/soap.ts";

const enc = new TextEncoder();

/** Waits until `check` holds (the sim records a close when its own side has run). */
async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

for (const tr of TRANSPORTS) {
  Deno.test(`keep-alive ${tr}: one connection serves 50 requests; no request limit; counted`, async () => {
    await using env = await simEnv();
    await withConn(env.target[tr], async (c) => {
      for (let i = 0; i < 25; i++) {
        const sid = field((await call(c, logon())).value, "ulSessionId")!;
        assert.equal((await call(c, logoff(sid))).er, "0");
      }
    });
    await until(() => env.sim.connections()[0]?.closed !== null);
    const [conn, ...more] = env.sim.connections();
    assert.equal(more.length, 0);
    assert.equal(conn.requests, 50);
    assert.equal(conn.transport, tr);
    assert.equal(conn.closedBy, "client");
    assert.equal(conn.tlsHandshake, tr === "tls" ? true : null);
    assert.ok(env.sim.requests.every((r) => r.connection === conn.id));
    const stats = env.sim.connectionStats();
    assert.equal(stats.accepted[tr], 1);
    assert.equal(stats.tlsHandshakes, tr === "tls" ? 1 : 0);
    assert.equal(stats.open, 0);
  });

  Deno.test(`keep-alive ${tr}: Connection: close, HTTP/1.0 and a fault each end the connection`, async () => {
    await using env = await simEnv();
    const t = env.target[tr];
    assert.equal(parse((await exchange(t, post(logon(), { close: true })))!).er, "0");
    const body = enc.encode(logon());
    const http10 = enc.encode(
      `POST /kopano HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    await withConn(t, async (c) => {
      await c.write(new Uint8Array([...http10, ...body]));
      assert.equal((await c.response())!.status, 200);
      assert.ok(await c.closedWithin(2000), "HTTP/1.0: closed after the reply");
    });
    await withConn(t, async (c) => {
      await c.write(post("<not-soap"));
      assert.equal((await c.response())!.status, 500);
      assert.ok(await c.closedWithin(2000), "closed after the fault");
    });
    await until(() => env.sim.connections().every((c) => c.closed !== null));
    assert.deepEqual(
      env.sim.connections().map((c) => [c.requests, c.closedBy]),
      [[1, "connection: close"], [1, "connection: close"], [1, "connection: close"]],
    );
  });
}

Deno.test("keep-alive: idle TCP/TLS connections are closed by the server ('idle'), after the last reply", async () => {
  await using env = await simEnv({ idleTimeoutMs: 400 });
  for (const tr of ["tcp", "tls"] as const) {
    await withConn(env.target[tr], async (c) => {
      const sid = field((await call(c, logon())).value, "ulSessionId")!;
      await new Promise((r) => setTimeout(r, 250));
      assert.equal((await call(c, getUser(sid))).er, "0", "not idle for 400 ms yet");
      const t0 = Date.now();
      assert.ok(await c.closedWithin(3000));
      assert.ok(Date.now() - t0 >= 300, "counted from the last reply");
    });
  }
  // A TLS client that never starts its handshake is idle too.
  const { hostname, port } = env.target.tls as { hostname: string; port: number };
  const raw = await Deno.connect({ hostname, port });
  try {
    await until(() =>
      env.sim.connections().length === 3 && env.sim.connections()[2].closed !== null
    );
  } finally {
    raw.close();
  }
  assert.deepEqual(
    env.sim.connections().map((c) => [c.transport, c.requests, c.closedBy, c.tlsHandshake]),
    [["tcp", 2, "idle", null], ["tls", 2, "idle", true], ["tls", 0, "idle", false]],
  );
  assert.equal(env.sim.connectionStats().tlsHandshakes, 1);
});

for (const tr of TRANSPORTS) {
  Deno.test(`fault close-reused ${tr}: a reused connection ends without a reply; a new one is served`, async () => {
    await using env = await simEnv({ faults: [{ kind: "close-reused", times: 1 }] });
    const t = env.target[tr];
    const c = await RawConn.open(t);
    try {
      const sid = field((await call(c, logon())).value, "ulSessionId")!;
      await c.write(post(logoff(sid)));
      assert.equal(await c.response(), null, "closed before any byte of a reply");
    } finally {
      c.close();
    }
    // Used up (times 1): the next connection is reused freely.
    await withConn(t, async (c2) => {
      const sid = field((await call(c2, logon())).value, "ulSessionId")!;
      assert.equal((await call(c2, logoff(sid))).er, "0");
    });
    await until(() => env.sim.connections().every((x) => x.closed !== null));
    assert.deepEqual(
      env.sim.connections().map((x) => [x.requests, x.closedBy]),
      [[1, "fault: close-reused"], [2, "client"]],
    );
    assert.deepEqual(env.sim.requests.map((r) => r.method), ["logon", "logon", "logoff"]);
    assert.equal(env.sim.openSessions(), 1, "the first session was never logged off");
  });
}

Deno.test("fault close-reused: a first request is never affected; transport filter; CLI syntax", async () => {
  await using env = await simEnv({ faults: [{ kind: "close-reused", transport: "unix" }] });
  for (let i = 0; i < 3; i++) {
    assert.equal(parse((await exchange(env.target.unix, post(logon())))!).er, "0");
  }
  await withConn(env.target.tcp, async (c) => {
    await call(c, logon());
    assert.equal((await call(c, logon())).er, "0", "tcp is not filtered in");
  });
  assert.deepEqual(parseFaultSpec("close-reused*2+tcp"), {
    kind: "close-reused",
    times: 2,
    transport: "tcp",
  });
  assert.throws(() => parseFaultSpec("close-reused@logon"), /cannot be limited to a method/);
});
