// The resident helper keeps connections to Kopano alive (issue 11): one connection per server and
// set of trusted CAs serves many logins, so TLS is negotiated once; idle ones are closed before
// kopano-server would; a kept connection the server closed meanwhile is retried once on a new
// one; a connection that saw anything wrong is never lent again; two cafile= never share one, and
// a changed cafile= counts from the next login. The Kopano-compatible server shows all of it.
import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { httpReply, startRawServer } from "../lib/raw_server.ts";
import { makeTestPki } from "../lib/pki.ts";
import { login, simAllTransports, startDaemon, status } from "./lib.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("keep-alive: one connection per server serves many logins; TLS negotiated once", async () => {
  await using w = await simAllTransports({ disabledFeatures: "imap" });
  const sim = w.sim;
  await using d = await startDaemon();
  {
    const targets = [w.args.tcp, w.args.tls, w.args.unix];
    for (let i = 0; i < 20; i++) {
      for (const t of targets) {
        const extra = i % 4 === 1 ? ["service=pop3"] : [];
        const right = i % 4 !== 2;
        const r = await login(d.socket, {
          user: "alice",
          password: right ? "secret" : "wrong",
          args: [...t, ...extra],
        });
        assert.equal(r.result, right ? "PAM_SUCCESS" : "PAM_AUTH_ERR", `${t[0]} #${i}`);
      }
    }
    const stats = sim.connectionStats();
    assert.deepEqual(stats.accepted, { tcp: 1, tls: 1, unix: 1 });
    assert.equal(stats.tlsHandshakes, 1, "one TLS handshake for 20 https logins");
    // 15 accepted logins x (logon, logoff) + 5 with getUser + 5 refused (logon only) = 40 each.
    assert.deepEqual(sim.connections().map((c) => c.requests), [40, 40, 40]);
    assert.equal(sim.openSessions(), 0);
    const s = await status(d.socket);
    assert.deepEqual(s.kopano_connections, { open: 3, idle: 3, opened: 3, reused: 57 });
  }
});

Deno.test("keep-alive: idle TCP and TLS connections are closed by the daemon before kopano-server's 5 s", async () => {
  const pki = await makeTestPki();
  await using sim = await startKopanoSim({
    listen: ["127.0.0.1:0"],
    tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
  }); // idleTimeoutMs 5000, as server_recv_timeout
  await using d = await startDaemon();
  try {
    for (
      const args of [[`socket=${sim.urls.http[0]}`], [
        `socket=${sim.urls.https[0]}`,
        `cafile=${pki.caFile}`,
      ]]
    ) {
      assert.equal(
        (await login(d.socket, { user: "alice", password: "secret", args })).result,
        "PAM_SUCCESS",
      );
    }
    await sleep(4600);
    const conns = sim.connections();
    assert.equal(conns.length, 2);
    for (const c of conns) {
      const last = Math.max(
        ...sim.requests.filter((r) => r.connection === c.id).map((r) => r.time),
      );
      assert.equal(c.closedBy, "client", `${c.transport}: the daemon closed it, not the server`);
      const idle = c.closed! - last;
      assert.ok(idle >= 3800 && idle < 4800, `${c.transport}: closed after ${idle} ms idle`);
    }
    assert.deepEqual((await status(d.socket)).kopano_connections, {
      open: 0,
      idle: 0,
      opened: 2,
      reused: 0,
    });
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("keep-alive: a kept connection the server closed is retried once on a new one", async () => {
  await using sim = await startKopanoSim();
  await using d = await startDaemon();
  const args = [`socket=${sim.urls.http[0]}`];
  const ok = async () =>
    (await login(d.socket, { user: "alice", password: "secret", args })).result;
  assert.equal(await ok(), "PAM_SUCCESS");
  // The server's idle close meets the reuse: closed without a reply as the logon arrives.
  await sim.setFaults([{ kind: "close-reused", times: 1 }]);
  assert.equal(await ok(), "PAM_SUCCESS");
  assert.deepEqual(
    sim.connections().map((c) => [c.requests, c.closedBy]),
    [[2, "fault: close-reused"], [2, null]],
  );
  assert.deepEqual(sim.requests.map((r) => [r.connection, r.method]), [
    [1, "logon"],
    [1, "logoff"],
    [2, "logon"],
    [2, "logoff"],
  ]);
  // Once only: when the new connection fails too, the server gave no answer.
  await sim.setFaults([{ kind: "close-reused", times: 1 }, { kind: "reset", times: 1 }]);
  const r = await login(d.socket, { user: "alice", password: "secret", args });
  assert.equal(r.result, "PAM_AUTHINFO_UNAVAIL");
  assert.match(r.log.at(-1)!.message, /logon: connection closed before any reply/);
  assert.equal(await ok(), "PAM_SUCCESS", "and the next login is fine");
  const s = await status(d.socket);
  assert.equal((s.kopano_connections as { opened: number }).opened, 4);
  assert.equal(sim.openSessions(), 0);
});

Deno.test("keep-alive: a server that idle-closes sooner than the daemon (server_recv_timeout=1) costs nothing", async () => {
  await using sim = await startKopanoSim({ idleTimeoutMs: 1000 });
  await using d = await startDaemon();
  const args = [`socket=${sim.urls.http[0]}`];
  for (let i = 0; i < 3; i++) {
    assert.equal(
      (await login(d.socket, { user: "alice", password: "secret", args })).result,
      "PAM_SUCCESS",
    );
    await sleep(1300);
  }
  assert.deepEqual(sim.connections().map((c) => c.closedBy), ["idle", "idle", "idle"]);
  assert.equal(sim.requests.length, 6, "no request was lost or sent twice");
});

Deno.test("keep-alive: at most 16 idle connections are kept per server", async () => {
  await using sim = await startKopanoSim({
    faults: [{ kind: "delay", value: 300, method: "logon" }],
  });
  await using d = await startDaemon();
  const args = [`socket=${sim.urls.http[0]}`];
  const all = await Promise.all(
    Array.from({ length: 24 }, () => login(d.socket, { user: "alice", password: "secret", args })),
  );
  assert.deepEqual(all.map((r) => r.result), Array(24).fill("PAM_SUCCESS"));
  assert.equal(sim.connectionStats().accepted.tcp, 24, "24 at once: 24 connections");
  assert.deepEqual((await status(d.socket)).kopano_connections, {
    open: 16,
    idle: 16,
    opened: 24,
    reused: 0,
  });
  await sleep(100);
  assert.equal(sim.connectionStats().open, 16, "the other 8 were closed");
});

/** Minimal gSOAP-style replies for the scriptable server. */
function envelope(inner: string): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope ' +
    'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa">' +
    `<SOAP-ENV:Body>${inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
}
const LOGON = envelope(
  "<ns:logonResponse><er>0</er><ulSessionId>4242</ulSessionId>" +
    "<lpszVersion>0,11,0,2</lpszVersion></ns:logonResponse>",
);
const LOGOFF = envelope("<ns:logoffResponse><result>0</result></ns:logoffResponse>");

Deno.test("keep-alive: after a fault, garbage, a timeout, an unread reply, HTTP/1.0 or Connection: close, never lent again", async () => {
  // What the server answers to the next logon; logoff is always answered normally.
  let logon: string | { hang: true } = httpReply(LOGON);
  const server = await startRawServer((req) =>
    req.body.includes("<ns:logon>") ? logon : httpReply(LOGOFF)
  );
  await using d = await startDaemon();
  try {
    const args = [`socket=${server.url}`, "timeout=1"];
    const go = () => login(d.socket, { user: "alice", password: "secret", args });
    assert.equal((await go()).result, "PAM_SUCCESS");
    assert.equal((await go()).result, "PAM_SUCCESS");
    assert.equal(server.connections(), 1, "a clean exchange keeps the connection");
    const bad: [string, string | { hang: true }][] = [
      ["no reply before the deadline", { hang: true }],
      ["a reply not read to its end (over 1 MiB)", httpReply(LOGON + " ".repeat(1024 * 1024))],
      [
        "HTTP 500 (kept alive by the server)",
        httpReply(
          envelope(
            "<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>x</faultstring></SOAP-ENV:Fault>",
          ),
          { status: "500 Internal Server Error" },
        ),
      ],
      ["a 200 that is not SOAP", httpReply("<html>maintenance</html>")],
      ["HTTP/1.0 (even with keep-alive)", httpReply(LOGON).replace("HTTP/1.1", "HTTP/1.0")],
      [
        "Connection: close",
        httpReply(LOGON, { headers: [`Content-Length: ${LOGON.length}`, "Connection: close"] }),
      ],
    ];
    for (const [what, reply] of bad) {
      logon = reply;
      await go();
      const spoiled = server.requests.findLast((r) => r.body.includes("<ns:logon>"))!.connection;
      const seen = server.requests.length;
      logon = httpReply(LOGON);
      assert.equal((await go()).result, "PAM_SUCCESS", what);
      assert.equal((await go()).result, "PAM_SUCCESS", what);
      const later = server.requests.slice(seen).map((r) => r.connection);
      assert.ok(!later.includes(spoiled), `${what}: connection ${spoiled} not used again`);
      assert.equal(new Set(later).size, 1, `${what}: the next logins share one connection`);
    }
  } finally {
    await server.close();
  }
});

Deno.test("keep-alive: two cafile= never share a connection; a changed cafile= counts at once", async () => {
  const pki = await makeTestPki();
  await using sim = await startKopanoSim({
    listen: [],
    tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
  });
  await using d = await startDaemon();
  try {
    const a = pki.caFile;
    const b = `${pki.dir}/copy-of-ca.pem`;
    await Deno.copyFile(a, b);
    const go = (cafile: string) =>
      login(d.socket, {
        user: "alice",
        password: "secret",
        args: [`socket=${sim.urls.https[0]}`, `cafile=${cafile}`],
      });
    for (let i = 0; i < 4; i++) {
      assert.equal((await go(a)).result, "PAM_SUCCESS");
      assert.equal((await go(b)).result, "PAM_SUCCESS");
    }
    assert.equal(sim.connectionStats().tlsHandshakes, 2, "one connection per CA file");
    // b now trusts another CA only: the next login with it must not ride on the connection that
    // was verified against the old content.
    await sleep(20);
    await Deno.copyFile(pki.otherCaFile, b);
    const refused = await go(b);
    assert.equal(refused.result, "PAM_AUTHINFO_UNAVAIL");
    assert.match(refused.log.at(-1)!.message, /TLS failure: .*UnknownIssuer/);
    assert.equal((await go(a)).result, "PAM_SUCCESS", "a is untouched and still kept");
    // b now trusts both CAs: another set of anchors again, so another connection.
    await sleep(20);
    await Deno.writeTextFile(
      b,
      (await Deno.readTextFile(a)) + await Deno.readTextFile(pki.otherCaFile),
    );
    assert.equal((await go(b)).result, "PAM_SUCCESS");
    assert.equal((await go(b)).result, "PAM_SUCCESS");
    assert.equal(sim.connectionStats().tlsHandshakes, 3, "b's new content: one new connection");
    assert.equal(sim.openSessions(), 0);
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});
