// A kept-alive connection that holds bytes nobody asked for is closed, never lent to the next
// login (issue 18, point 7). The server here refuses alice's logon, then pushes an unrequested
// "logon accepted" onto the same connection: in the same write, right after (while the daemon
// puts the connection back in its pool), or while it sits idle shortly before the next login
// takes it. The next login (bob, wrong password) must be refused by the server, asked on a new
// connection; had it read the pushed reply, it would succeed.
import assert from "node:assert/strict";
import { type Action, httpReply, startRawServer } from "../lib/raw_server.ts";
import { login, startDaemon, status } from "./lib.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function envelope(inner: string): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope ' +
    'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa">' +
    `<SOAP-ENV:Body>${inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
}
/** KCERR_LOGON_FAILED */
const REFUSED = httpReply(envelope("<ns:logonResponse><er>2147483657</er></ns:logonResponse>"));
const ACCEPTED = httpReply(envelope(
  "<ns:logonResponse><er>0</er><ulSessionId>4242</ulSessionId>" +
    "<lpszVersion>0,11,0,2</lpszVersion></ns:logonResponse>",
));
const LOGOFF = httpReply(envelope("<ns:logoffResponse><result>0</result></ns:logoffResponse>"));

interface Variant {
  name: string;
  /** What the server answers alice's logon with. */
  refusal: Action;
  /** How long after alice's login the next one starts. */
  waitMs: number;
}

const VARIANTS: Variant[] = [
  { name: "in the same write as the refusal", refusal: REFUSED + ACCEPTED, waitMs: 100 },
  {
    name: "right after the refusal, as the connection goes back to the pool",
    refusal: { send: REFUSED, push: { afterMs: 0, bytes: ACCEPTED } },
    waitMs: 150,
  },
  {
    name: "while it is idle, 150 ms before the next login takes it",
    refusal: { send: REFUSED, push: { afterMs: 400, bytes: ACCEPTED } },
    waitMs: 550,
  },
];

for (const v of VARIANTS) {
  Deno.test(`stray bytes on a kept-alive connection, ${v.name}: closed, never read as the next login's reply`, async () => {
    const server = await startRawServer((req) => {
      if (req.body.includes("<ns:logoff>")) return LOGOFF;
      return req.body.includes("<szUsername>alice</szUsername>") ? v.refusal : REFUSED;
    });
    await using d = await startDaemon();
    try {
      const args = [`socket=${server.url}`, "timeout=3"];
      const alice = await login(d.socket, { user: "alice", password: "wrong", args });
      assert.equal(alice.result, "PAM_AUTH_ERR");
      await sleep(v.waitMs);
      const bob = await login(d.socket, { user: "bob", password: "wrong", args });
      assert.equal(bob.result, "PAM_AUTH_ERR", JSON.stringify(bob));
      // The server was asked about bob, on a connection of its own.
      const asked = server.requests.filter((r) => r.body.includes("<szUsername>bob</szUsername>"));
      assert.equal(asked.length, 1);
      assert.notEqual(asked[0].connection, server.requests[0].connection);
      assert.ok(!server.requests.some((r) => r.body.includes("<ns:logoff>")), "no session");
      // The spoiled connection is closed, not kept: only bob's is in the pool.
      assert.deepEqual((await status(d.socket)).kopano_connections, {
        open: 1,
        idle: 1,
        opened: 2,
        reused: 0,
      });
    } finally {
      await server.close();
    }
  });
}

Deno.test("a kept-alive connection that stays silent is still reused, and an idle one the server closes is dropped at once", async () => {
  let closeAfterReply = false;
  const server = await startRawServer((req) => {
    if (req.body.includes("<ns:logoff>")) return LOGOFF;
    return closeAfterReply ? { send: REFUSED, close: true } : REFUSED;
  });
  await using d = await startDaemon();
  try {
    const args = [`socket=${server.url}`, "timeout=3"];
    for (let i = 0; i < 3; i++) {
      assert.equal(
        (await login(d.socket, { user: "bob", password: "x", args })).result,
        "PAM_AUTH_ERR",
      );
    }
    assert.equal(server.connections(), 1, "one connection served all three");
    closeAfterReply = true;
    assert.equal(
      (await login(d.socket, { user: "bob", password: "x", args })).result,
      "PAM_AUTH_ERR",
    );
    await sleep(100);
    // The server's end of stream reached the idle connection: the pool let it go.
    const pool = (await status(d.socket)).kopano_connections as Record<string, number>;
    assert.deepEqual(pool, { open: 0, idle: 0, opened: 1, reused: 3 });
  } finally {
    await server.close();
  }
});
