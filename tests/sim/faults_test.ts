// Every fault-injection knob, over TCP, TLS and the UNIX socket, from the API and its CLI syntax.

import assert from "node:assert/strict";
import { type Fault, parseFaultSpec } from "../kopano_sim/mod.ts";
import { call, parse, withConn } from "./lib/calls.ts";
import { simEnv, TRANSPORTS } from "./lib/env.ts";
import { exchange, header, RawConn, type Target, text } from "./lib/raw_http.ts";
import { bodyElement, field, getUser, logoff, logon, post } from "./lib/soap.ts";

const dec = new TextDecoder();

/** exchange(), with a connection the server dropped at once counted as "no reply". */
async function exchangeOrNull(t: Target, req: Uint8Array) {
  try {
    return await exchange(t, req);
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe) {
      return null;
    }
    throw e;
  }
}

for (const tr of TRANSPORTS) {
  Deno.test(`faults ${tr}: delay, drop, close-mid-reply, garbage, http-500, http-503, wrong-content-type`, async () => {
    await using env = await simEnv();
    const t = env.target[tr];
    const req = post(logon({ flags: 3 }), { close: true });

    await env.sim.setFaults([{ kind: "delay", value: 300 }]);
    const t0 = Date.now();
    assert.equal(parse((await exchange(t, req))!).er, "0");
    assert.ok(Date.now() - t0 >= 280, "reply delayed");

    await env.sim.setFaults([{ kind: "drop" }]);
    assert.equal(await exchange(t, req), null, "dropped: closed without a reply");

    await env.sim.setFaults([{ kind: "close-mid-reply" }]);
    await withConn(t, async (c) => {
      await c.write(post(logon(), { close: true }));
      await assert.rejects(() => c.response(), /connection ended inside the body/);
    });
    assert.equal(env.sim.openSessions(), 1, "the logon was served before the reply was cut");

    await env.sim.setFaults([{ kind: "garbage" }]);
    const g = (await exchange(t, req))!;
    assert.equal(g.status, 200);
    assert.equal(header(g, "Content-Type"), "text/xml; charset=utf-8");
    assert.equal(g.body[0], 0);
    assert.throws(() => bodyElement(g.body));

    await env.sim.setFaults([{ kind: "http-500" }]);
    const f500 = (await exchange(t, req))!;
    assert.equal(f500.status, 500);
    assert.equal(bodyElement(f500.body).value.faultcode, "SOAP-ENV:Server");

    await env.sim.setFaults([{ kind: "http-503" }]);
    const f503 = (await exchange(t, req))!;
    assert.equal(f503.status, 503);
    assert.equal(header(f503, "Content-Type"), "text/html");
    assert.match(text(f503), /Service Unavailable/);

    await env.sim.setFaults([{ kind: "wrong-content-type" }]);
    const wct = (await exchange(t, req))!;
    assert.equal(header(wct, "Content-Type"), "text/html; charset=utf-8");
    assert.equal(parse(wct).er, "0", "the body is still the real reply");
    await env.sim.setFaults([{ kind: "wrong-content-type", value: "application/json" }]);
    assert.equal(header((await exchange(t, req))!, "Content-Type"), "application/json");

    await env.sim.clearFaults();
    assert.equal(parse((await exchange(t, req))!).er, "0");
    assert.deepEqual(
      env.sim.requests.map((r) => r.outcome.replace(/^injected: /, "")).slice(0, 8),
      [
        "reply",
        "drop",
        "close-mid-reply",
        "garbage",
        "http-500",
        "http-503",
        "wrong-content-type",
        "wrong-content-type",
      ],
    );
  });

  Deno.test(`faults ${tr}: hang holds the connection open without a reply until the sim closes`, async () => {
    const env = await simEnv({ faults: [{ kind: "hang" }] });
    const c = await RawConn.open(env.target[tr]);
    try {
      await c.write(post(logon()));
      assert.ok(await c.quietFor(400), "no reply, no close");
      assert.equal(env.sim.openSessions(), 0, "the request was not served");
      await env[Symbol.asyncDispose]();
      assert.ok(await c.closedWithin(2000), "closed with the sim");
    } finally {
      c.close();
    }
  });

  Deno.test(`faults ${tr}: reset closes a connection at once; times limits it`, async () => {
    await using env = await simEnv({ faults: [{ kind: "reset", times: 1 }] });
    assert.equal(await exchangeOrNull(env.target[tr], post(logon(), { close: true })), null);
    assert.equal(parse((await exchange(env.target[tr], post(logon(), { close: true })))!).er, "0");
    assert.equal(env.sim.requests.length, 1, "the reset connection carried no request");
  });

  Deno.test(`faults ${tr}: refuse makes connect() fail until cleared (same address)`, async () => {
    await using env = await simEnv();
    const url = { tcp: env.sim.urls.http, tls: env.sim.urls.https, unix: env.sim.urls.unix }[tr][0];
    await env.sim.setFaults([{ kind: "refuse", transport: tr }]);
    await assert.rejects(() => RawConn.open(env.target[tr]), Deno.errors.ConnectionRefused);
    await env.sim.clearFaults();
    assert.equal(
      { tcp: env.sim.urls.http, tls: env.sim.urls.https, unix: env.sim.urls.unix }[tr][0],
      url,
    );
    assert.equal(parse((await exchange(env.target[tr], post(logon(), { close: true })))!).er, "0");
    // Flipping without waiting still ends listening on the same address.
    void env.sim.setFaults([{ kind: "refuse" }]);
    await env.sim.clearFaults();
    assert.equal(parse((await exchange(env.target[tr], post(logon(), { close: true })))!).er, "0");
  });

  Deno.test(`faults ${tr}: raw replies (hostile XML, verbatim bytes)`, async () => {
    await using env = await simEnv();
    const laughs = `<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">` +
      `<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>` +
      `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>` +
      `<ns:logonResponse xmlns:ns="urn:zarafa"><er>0</er><lpszVersion>&lol2;</lpszVersion></ns:logonResponse>` +
      `</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
    await env.sim.setFaults([{
      kind: "raw",
      reply: {
        status: 200,
        headers: { "Content-Type": "text/xml; charset=utf-8", "X-Test": "1" },
        body: laughs,
      },
    }]);
    const r = (await exchange(env.target[tr], post(logon())))!;
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers, [
      ["Content-Type", "text/xml; charset=utf-8"],
      ["X-Test", "1"],
      ["Content-Length", String(laughs.length)],
      ["Connection", "close"],
    ]);
    assert.equal(text(r), laughs);
    assert.equal(env.sim.openSessions(), 0);

    const deep = "<a>".repeat(10_000) + "</a>".repeat(10_000);
    await env.sim.setFaults([{
      kind: "raw",
      reply: { status: 201, reason: "Whatever", body: deep },
    }]);
    const d = (await exchange(env.target[tr], post(logon())))!;
    assert.deepEqual([d.status, d.reason, text(d)], [201, "Whatever", deep]);

    await env.sim.setFaults([{
      kind: "raw",
      reply: { bytes: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<SOAP-ENV:Env" },
    }]);
    await withConn(env.target[tr], async (c) => {
      await c.write(post(logon()));
      await assert.rejects(() => c.response(), /inside the body/);
    });
  });
}

Deno.test("faults: oversized streams the announced size without holding it", async () => {
  await using env = await simEnv({
    faults: [{ kind: "oversized", times: 1 }, { kind: "oversized", value: 5000, times: 1 }],
  });
  await withConn(env.target.unix, async (c) => {
    await c.write(post(logon()));
    const head = dec.decode(await c.readAll(4096)); // reads what has arrived so far, up to the limit
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /\r\nContent-Length: 104857600\r\n/);
    assert.match(head, /\r\n\r\n<\?xml version="1\.0" encoding="UTF-8"\?>\n<SOAP-ENV:Envelope /);
    const more = await c.readAll(2 * 1024 * 1024);
    assert.ok(more.length > 0 && more.every((b) => b === 0x41), "an endless string of 'A'");
  }); // hang up after ~2 MiB of 100 MiB
  const small = (await exchange(env.target.tcp, post(logon())))!;
  assert.equal(small.body.length, 5000);
  assert.equal(
    parse((await exchange(env.target.tcp, post(logon(), { close: true })))!).er,
    "0",
    "still serving",
  );
});

Deno.test("faults: method, transport and times filters; the first matching fault applies", async () => {
  await using env = await simEnv();
  await env.sim.setFaults([
    { kind: "http-503", method: "getUser", times: 2 },
    { kind: "http-500", transport: "unix" },
  ]);
  await withConn(env.target.tcp, async (c) => {
    const sid = field((await call(c, logon())).value, "ulSessionId")!;
    await c.write(post(getUser(sid)));
    assert.equal((await c.response())!.status, 503);
  });
  const sid2 = await withConn(
    env.target.tcp,
    (c) => call(c, logon()).then((r) => field(r.value, "ulSessionId")!),
  );
  assert.equal((await exchange(env.target.tcp, post(getUser(sid2))))!.status, 503);
  assert.equal(
    parse((await exchange(env.target.tcp, post(getUser(sid2))))!).er,
    "0",
    "used up after 2",
  );
  assert.equal((await exchange(env.target.unix, post(logon())))!.status, 500, "unix only");
  assert.equal(parse((await exchange(env.target.tcp, post(logoff(sid2))))!).er, "0");
  assert.equal(parse((await exchange(env.target.tls, post(logon(), { close: true })))!).er, "0");
});

Deno.test("faults: validation and the command-line syntax", () => {
  assert.deepEqual(parseFaultSpec("delay=500@getUser*2+unix"), {
    kind: "delay",
    value: 500,
    method: "getUser",
    times: 2,
    transport: "unix",
  });
  assert.deepEqual(parseFaultSpec("oversized"), { kind: "oversized", value: 100 * 1024 * 1024 });
  assert.deepEqual(parseFaultSpec("wrong-content-type=text/plain"), {
    kind: "wrong-content-type",
    value: "text/plain",
  });
  assert.deepEqual(parseFaultSpec("reset*3+tls"), { kind: "reset", times: 3, transport: "tls" });
  assert.deepEqual(parseFaultSpec("refuse"), { kind: "refuse" });
  assert.equal(parseFaultSpec("raw=/tmp/reply.http").kind, "raw");
  for (
    const bad of [
      "",
      "explode",
      "delay=-1",
      "delay=abc",
      "reset@logon",
      "refuse*2",
      "raw",
      "hang*0",
      "drop+udp",
    ]
  ) {
    assert.throws(() => parseFaultSpec(bad), Error, bad);
  }
});

Deno.test("faults: setFaults rejects bad faults and keeps the old ones", async () => {
  await using env = await simEnv({ faults: [{ kind: "http-503" }] });
  assert.throws(() => env.sim.setFaults([{ kind: "boom" as Fault["kind"] }]), /unknown fault kind/);
  assert.throws(() => env.sim.setFaults([{ kind: "raw" }]), /needs a reply/);
  assert.throws(() => env.sim.setFaults([{ kind: "reset", method: "logon" }]), /cannot be limited/);
  assert.throws(() => env.sim.setFaults([{ kind: "delay", times: 1.5 }]), /positive integer/);
  assert.equal((await exchange(env.target.tcp, post(logon())))!.status, 503);
});
