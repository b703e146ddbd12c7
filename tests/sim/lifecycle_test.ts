// Starting and stopping the sim: close() ends everything promptly (open keep-alive connections,
// pending delays, streams in progress), is idempotent, and leaves no socket file or resource.

import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { call } from "./lib/calls.ts";
import { simEnv } from "./lib/env.ts";
import { RawConn, targetOf } from "./lib/raw_http.ts";
import { logon, post } from "./lib/soap.ts";

Deno.test("lifecycle: close() ends idle, delayed and streaming connections at once", async () => {
  const env = await simEnv();
  const idle = await RawConn.open(env.target.unix);
  await call(idle, logon());
  await env.sim.setFaults([{ kind: "delay", value: 60_000, times: 1 }, {
    kind: "oversized",
    times: 1,
  }]);
  const delayed = await RawConn.open(env.target.tcp);
  await delayed.write(post(logon()));
  const streaming = await RawConn.open(env.target.tls);
  await streaming.write(post(logon()));
  const firstBytes = await streaming.readAll(1024);
  assert.ok(firstBytes.length >= 1024);
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  const closing = env.sim.close();
  assert.equal(env.sim.close(), closing, "idempotent: the same promise");
  await env[Symbol.asyncDispose]();
  assert.ok(Date.now() - t0 < 2000, "no waiting for the 60 s delay or the 100 MiB stream");
  for (const c of [idle, delayed]) {
    assert.ok(await c.closedWithin(2000));
    c.close();
  }
  await streaming.readAll();
  streaming.close();
  await assert.rejects(() => Deno.stat(`${env.dir}/server.sock`), Deno.errors.NotFound);
});

Deno.test("lifecycle: after close, connecting is refused; a refused UNIX socket file is removed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sim_life_" });
  try {
    const sim = await startKopanoSim({ listen: ["127.0.0.1:0"], unix: `${dir}/s.sock` });
    const tcp = targetOf(sim.urls.http[0]);
    await sim.setFaults([{ kind: "refuse", transport: "unix" }]);
    assert.ok((await Deno.lstat(`${dir}/s.sock`)).isSocket, "stale socket left while refusing");
    await sim.close();
    await assert.rejects(() => RawConn.open(tcp), Deno.errors.ConnectionRefused);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no socket or stale link left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lifecycle: a leftover socket file is replaced, a regular file is not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sim_life_" });
  try {
    const first = await startKopanoSim({ unix: `${dir}/s.sock` });
    await first.setFaults([{ kind: "refuse" }]); // leaves a stale socket, like a crashed server
    {
      await using second = await startKopanoSim({ unix: `${dir}/s.sock` });
      const c = await RawConn.open(targetOf(second.urls.unix[0]));
      assert.equal((await call(c, logon())).er, "0");
      c.close();
    }
    await first.close();
    await Deno.writeTextFile(`${dir}/file`, "keep me");
    await assert.rejects(() => startKopanoSim({ unix: `${dir}/file` }), Deno.errors.AddrInUse);
    assert.equal(await Deno.readTextFile(`${dir}/file`), "keep me");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lifecycle: a listener that cannot bind fails start() and leaves nothing open", async () => {
  await using env = await simEnv();
  const port = new URL(env.sim.urls.http[0]).port;
  await assert.rejects(
    () => startKopanoSim({ listen: ["127.0.0.1:0", `127.0.0.1:${port}`] }),
    Deno.errors.AddrInUse,
  );
  // The request log and sessions of the running sim are untouched.
  const c = await RawConn.open(env.target.tcp);
  await c.write(post(logon(), { close: true }));
  assert.equal((await c.response())!.status, 200);
  c.close();
  assert.equal(env.sim.requests.length, 1);
});

Deno.test("lifecycle: maxLoggedRequests keeps the newest requests; clearRequests empties the log", async () => {
  await using env = await simEnv({ maxLoggedRequests: 3 });
  for (let i = 0; i < 5; i++) {
    const c = await RawConn.open(env.target.unix);
    await call(c, logon({ password: `p${i}` }), { close: true });
    c.close();
  }
  assert.deepEqual(env.sim.requests.map((r) => [r.seq, r.params.szPassword]), [
    [3, "p2"],
    [4, "p3"],
    [5, "p4"],
  ]);
  env.sim.clearRequests();
  assert.equal(env.sim.requests.length, 0);
});
