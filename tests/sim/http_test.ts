// The sim's HTTP layer: framing, keep-alive and idle close, HTTP/1.0, header-less XML, methods,
// limits and error paths, over TCP, TLS and the UNIX socket (docs/kopano.md §1, §7).

import assert from "node:assert/strict";
import { call, parse, withConn } from "./lib/calls.ts";
import { simEnv, TRANSPORTS } from "./lib/env.ts";
import { exchange, header, text } from "./lib/raw_http.ts";
import { bodyElement, field, getUser, logoff, logon, post } from "./lib/soap.ts";

const enc = new TextEncoder();

async function gzipBytes(data: Uint8Array, format: CompressionFormat): Promise<Uint8Array> {
  const s = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream(format),
  );
  return new Uint8Array(await new Response(s).arrayBuffer());
}

for (const tr of TRANSPORTS) {
  Deno.test(`http ${tr}: keep-alive carries logon, getUser and logoff on one connection`, async () => {
    await using env = await simEnv();
    await withConn(env.target[tr], async (c) => {
      const l = await call(c, logon());
      assert.equal(header(l.res, "Connection"), "keep-alive");
      const sid = field(l.value, "ulSessionId")!;
      const g = await call(c, getUser(sid));
      assert.equal(g.er, "0");
      const o = await call(c, logoff(sid));
      assert.equal(o.er, "0");
      assert.ok(await c.quietFor(100));
    });
    assert.deepEqual(env.sim.requests.map((r) => [r.method, r.transport]), [
      ["logon", tr],
      ["getUser", tr],
      ["logoff", tr],
    ]);
    assert.equal(new Set(env.sim.requests.map((r) => r.connection)).size, 1);
    assert.equal(env.sim.openSessions(), 0);
  });

  Deno.test(`http ${tr}: "Connection: close" is answered with close, then the socket closes`, async () => {
    await using env = await simEnv();
    await withConn(env.target[tr], async (c) => {
      const r = await call(c, logon({ password: "wrong" }), { close: true });
      assert.equal(r.er, "2147483657");
      assert.equal(header(r.res, "Connection"), "close");
      assert.ok(await c.closedWithin(2000));
    });
  });

  Deno.test(`http ${tr}: GET gets 405 "HTTP GET method not implemented" and the connection closes`, async () => {
    await using env = await simEnv();
    await withConn(env.target[tr], async (c) => {
      await c.write("GET /kopano HTTP/1.1\r\nHost: x\r\n\r\n");
      const res = (await c.response())!;
      assert.equal(res.status, 405);
      assert.equal(res.reason, "Method Not Allowed");
      assert.equal(header(res, "Connection"), "close");
      const { name, value } = bodyElement(res.body);
      assert.equal(name, "SOAP-ENV:Fault");
      assert.equal(value.faultcode, "SOAP-ENV:Client");
      assert.equal(value.faultstring, "HTTP GET method not implemented");
      assert.ok(!text(res).includes("encodingStyle"), "fault bodies carry no encodingStyle");
      assert.ok(await c.closedWithin(2000));
    });
  });

  Deno.test(`http ${tr}: header-less XML is answered with a full HTTP reply and keep-alive`, async () => {
    await using env = await simEnv();
    await withConn(env.target[tr], async (c) => {
      await c.write(logon());
      const r1 = parse((await c.response())!);
      assert.equal(r1.res.status, 200);
      assert.equal(header(r1.res, "Connection"), "keep-alive");
      const sid = field(r1.value, "ulSessionId")!;
      await c.write(logoff(sid)); // a second bare request on the same connection
      assert.equal(parse((await c.response())!).er, "0");
    });
    assert.deepEqual(env.sim.requests.map((r) => [r.httpMethod, r.method]), [[null, "logon"], [
      null,
      "logoff",
    ]]);
  });

  Deno.test(`http ${tr}: an empty body is the fault "Data required for operation"`, async () => {
    await using env = await simEnv();
    const res = (await exchange(env.target[tr], post("")))!;
    assert.equal(res.status, 500);
    assert.equal(bodyElement(res.body).value.faultstring, "Data required for operation");
    assert.equal(header(res, "Connection"), "close");
  });

  Deno.test(`http ${tr}: after a fault the connection is closed, a pipelined request is not served`, async () => {
    await using env = await simEnv();
    await withConn(env.target[tr], async (c) => {
      const bad = post(logon().replace("<ulCapabilities>528", "<ulCapabilities>abc"));
      await c.write(new Uint8Array([...bad, ...post(logon())]));
      const res = (await c.response())!;
      assert.equal(res.status, 500);
      assert.equal(
        bodyElement(res.body).value.faultstring,
        "Validation constraint violation: invalid value in element 'ulCapabilities'",
      );
      assert.equal(await c.response(), null);
    });
    assert.equal(env.sim.openSessions(), 0);
  });
}

Deno.test("http: TCP and TLS connections idle for idleTimeoutMs are closed, UNIX ones are not", async () => {
  await using env = await simEnv({ idleTimeoutMs: 300 });
  for (const tr of ["tcp", "tls"] as const) {
    await withConn(env.target[tr], async (c) => {
      const r = await call(c, logon());
      assert.equal(r.er, "0");
      const t0 = Date.now();
      assert.ok(await c.closedWithin(3000), `${tr}: idle connection closed`);
      assert.ok(Date.now() - t0 >= 200, `${tr}: not before the idle time`);
    });
    // Also a connection that never sent anything.
    await withConn(env.target[tr], async (c) => assert.ok(await c.closedWithin(3000)));
  }
  await withConn(env.target.unix, async (c) => {
    const sid = field((await call(c, logon())).value, "ulSessionId")!;
    assert.ok(await c.quietFor(800), "UNIX connection still open after 800 ms idle");
    assert.equal((await call(c, logoff(sid))).er, "0");
  });
});

Deno.test("http: the idle timer restarts after every reply", async () => {
  await using env = await simEnv({ idleTimeoutMs: 700 });
  await withConn(env.target.tcp, async (c) => {
    const sid = field((await call(c, logon())).value, "ulSessionId")!;
    for (let i = 0; i < 3; i++) { // 3 x 400 ms > 700 ms, but never idle for 700 ms
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await call(c, getUser(sid))).er, "0");
    }
    assert.equal((await call(c, logoff(sid))).er, "0");
  });
});

Deno.test("http: HTTP/1.0 is answered with Connection: close and never chunked", async () => {
  await using env = await simEnv();
  const { target } = env;
  // A session that asked for ENHANCED_ICS gets chunked replies on HTTP/1.1 ...
  const l = await withConn(target.tcp, (c) => call(c, logon({ caps: 528 | 0x100 })));
  assert.equal(header(l.res, "Transfer-Encoding"), "chunked");
  const sid = field(l.value, "ulSessionId")!;
  // ... but Content-Length on HTTP/1.0, even when it asks for keep-alive.
  const body = enc.encode(getUser(sid));
  const req =
    `POST /kopano HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: ${body.length}\r\n\r\n`;
  await withConn(target.tcp, async (c) => {
    await c.write(new Uint8Array([...enc.encode(req), ...body]));
    const res = (await c.response())!;
    assert.equal(res.status, 200);
    assert.equal(header(res, "Connection"), "close");
    assert.equal(header(res, "Transfer-Encoding"), undefined);
    assert.equal(Number(header(res, "Content-Length")), res.body.length);
    assert.equal(parse(res).er, "0");
    assert.ok(await c.closedWithin(2000));
  });
});

Deno.test("http: chunked request bodies, no Content-Type, any path, absolute-form target", async () => {
  await using env = await simEnv();
  const body = enc.encode(logon());
  const chunked =
    `${(100).toString(16)}\r\n${new TextDecoder().decode(body.subarray(0, 100))}\r\n` +
    `${(body.length - 100).toString(16)};ext=1\r\n${
      new TextDecoder().decode(body.subarray(100))
    }\r\n0\r\n\r\n`;
  for (
    const target of [
      "/",
      "/zarafa",
      "/var/run/kopano/server.sock",
      "http://kopano.invalid/",
      "/anything?x=1",
    ]
  ) {
    const res = (await exchange(
      env.target.tcp,
      `POST ${target} HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}`,
    ))!;
    assert.equal(parse(res).er, "0", `path ${target}`);
  }
  assert.equal(env.sim.requests[0].headers["content-type"], undefined);
  assert.deepEqual(env.sim.requests.map((r) => r.path), [
    "/",
    "/zarafa",
    "/var/run/kopano/server.sock",
    "http://kopano.invalid/",
    "/anything?x=1",
  ]);
});

Deno.test("http: POST without Content-Length or chunking ends where the XML ends", async () => {
  await using env = await simEnv();
  await withConn(env.target.tcp, async (c) => {
    await c.write(`POST / HTTP/1.1\r\nHost: x\r\n\r\n${logon()}`);
    const r = parse((await c.response())!);
    assert.equal(r.er, "0");
    assert.equal(header(r.res, "Connection"), "keep-alive");
    await c.write(`POST / HTTP/1.1\r\nHost: x\r\n\r\n${logoff(field(r.value, "ulSessionId")!)}`);
    assert.equal(parse((await c.response())!).er, "0");
  });
});

Deno.test("http: gzip and deflate request bodies are accepted (Content-Encoding or gzip magic)", async () => {
  await using env = await simEnv();
  const body = enc.encode(logon({ flags: 3 }));
  for (
    const [format, headers] of [["gzip", ["Content-Encoding: gzip"]], ["deflate", [
      "Content-Encoding: deflate",
    ]], ["gzip", []]] as const
  ) {
    const res = (await exchange(
      env.target.tcp,
      post(await gzipBytes(body, format), { close: true, headers: [...headers] }),
    ))!;
    assert.equal(parse(res).er, "0", `${format} ${headers}`);
    assert.equal(header(res, "Content-Encoding"), undefined, "replies are not compressed by KC");
  }
});

Deno.test("http: pipelined requests are answered in order", async () => {
  await using env = await simEnv();
  await withConn(env.target.unix, async (c) => {
    const sid = field((await call(c, logon())).value, "ulSessionId")!;
    await c.write(
      new Uint8Array([...post(getUser(sid)), ...post(getUser(sid, 4)), ...post(logoff(sid))]),
    );
    assert.equal(parse((await c.response())!).er, "0");
    assert.equal(parse((await c.response())!).er, "2147483668");
    assert.equal(parse((await c.response())!).er, "0");
  });
});

Deno.test("http: Expect: 100-continue gets an interim 100 Continue", async () => {
  await using env = await simEnv();
  await withConn(env.target.tcp, async (c) => {
    const body = logon();
    await c.write(
      `POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: ${
        enc.encode(body).length
      }\r\n\r\n`,
    );
    const interim = (await c.response())!;
    assert.equal(interim.status, 100);
    await c.write(body);
    assert.equal(parse((await c.response())!).er, "0");
  });
});

Deno.test("http: other methods: PUT 405, HEAD and OPTIONS an empty 200", async () => {
  await using env = await simEnv();
  const put = (await exchange(env.target.tcp, "PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))!;
  assert.equal(put.status, 405);
  assert.equal(bodyElement(put.body).value.faultstring, "Error 405: HTTP 405 Method Not Allowed");
  for (const m of ["HEAD", "OPTIONS"]) {
    const res = (await exchange(env.target.tcp, `${m} / HTTP/1.1\r\n\r\n`))!;
    assert.equal(res.status, 200);
    assert.equal(header(res, "Content-Length"), "0");
  }
});

Deno.test("http: over-long request line (414) and header line (500)", async () => {
  await using env = await simEnv();
  const longLine = (await exchange(env.target.tcp, `POST /${"x".repeat(2000)} HTTP/1.1\r\n\r\n`))!;
  assert.equal(longLine.status, 414);
  assert.equal(longLine.reason, "Request-URI Too Large");
  const longHeader =
    (await exchange(env.target.tcp, `POST / HTTP/1.1\r\nX-A: ${"a".repeat(9000)}\r\n\r\n`))!;
  assert.equal(longHeader.status, 500);
  assert.equal(bodyElement(longHeader.body).value.faultstring, "Header line too long");
});

Deno.test("http: bodies over maxBodyBytes close the connection without a reply", async () => {
  await using env = await simEnv({ maxBodyBytes: 4096 });
  const big = logon().replace("<szClientApp>sim-test", `<szClientApp>${"x".repeat(5000)}`);
  for (const tr of ["tcp", "unix"] as const) {
    assert.equal(await exchange(env.target[tr], post(big)), null, `${tr} Content-Length`);
    assert.equal(await exchange(env.target[tr], big), null, `${tr} header-less`);
    const announced = "POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n<x>";
    assert.equal(await exchange(env.target[tr], announced), null, `${tr} announced`);
  }
  assert.ok(env.sim.requests.every((r) => r.outcome === "dropped: body too large"));
});

Deno.test("http: a request not complete within readTimeoutMs is dropped", async () => {
  await using env = await simEnv({ readTimeoutMs: 300 });
  await withConn(env.target.unix, async (c) => {
    await c.write("POST / HTTP/1.1\r\nContent-Length: 500\r\n\r\n<SOAP-ENV:Envelope");
    const t0 = Date.now();
    assert.ok(await c.closedWithin(3000));
    assert.ok(Date.now() - t0 >= 200);
  });
});

Deno.test("http: a body cut short by the client (EOF) inside the envelope gets no reply", async () => {
  await using env = await simEnv();
  await withConn(env.target.tcp, async (c) => {
    const body = enc.encode(logon());
    await c.write(`POST / HTTP/1.1\r\nContent-Length: ${body.length}\r\n\r\n`);
    await c.write(body.subarray(0, body.length - 60));
    await c.conn.closeWrite();
    assert.equal(await c.response(), null);
  });
  assert.equal(env.sim.openSessions(), 0);
  assert.match(env.sim.requests[0].outcome, /^dropped: /);
});

Deno.test("http: a body that ends before the Envelope start tag is complete is 'HTTP method error'", async () => {
  // gSOAP turns any failure to begin the envelope of an HTTP request into the request's HTTP
  // status, reported as "HTTP method error" (the same path as fixture d3).
  await using env = await simEnv();
  const res = (await exchange(env.target.tcp, post(logon().slice(0, 100), { close: true })))!;
  assert.equal(res.status, 500);
  assert.equal(bodyElement(res.body).value.faultstring, "HTTP method error");
});

Deno.test("http: Deno's fetch works against the sim over TCP and over the UNIX socket", async () => {
  await using env = await simEnv();
  const init = {
    method: "POST",
    headers: { "Content-Type": "text/xml; charset=utf-8" },
    body: logon({ flags: 3 }),
  };
  const tcp = await fetch(env.sim.urls.http[0], init);
  assert.equal(field(bodyElement(await tcp.text()).value, "er"), "0");
  const client = Deno.createHttpClient({
    proxy: { transport: "unix", path: `${env.dir}/server.sock` },
  });
  try {
    const unix = await fetch("http://kopano.invalid/kopano", { ...init, client });
    assert.equal(unix.headers.get("server"), "gSOAP/2.8");
    assert.equal(field(bodyElement(await unix.text()).value, "er"), "0");
  } finally {
    client.close();
  }
});
