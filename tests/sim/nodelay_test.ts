// Like kopano-server (gSOAP's soap_accept() sets TCP_NODELAY), the sim sends every reply at once on
// TCP and TLS: no write of its own waits for the client's delayed ACK. Read back from the sim's
// accepted socket itself (same process), next to the test's own client socket, which has Nagle on.

import assert from "node:assert/strict";
import { hasNoDelay, ownTcpSocket } from "../kopano_sim/nodelay.ts";
import { call } from "./lib/calls.ts";
import { simEnv } from "./lib/env.ts";
import { RawConn } from "./lib/raw_http.ts";
import { logon } from "./lib/soap.ts";

Deno.test("nodelay: the sim's accepted TCP and TLS sockets have TCP_NODELAY", async () => {
  await using env = await simEnv();
  for (const transport of ["tcp", "tls"] as const) {
    const target = env.target[transport];
    if (target.transport === "unix") throw new Error("unreachable");
    const c = await RawConn.open(target);
    try {
      assert.equal((await call(c, logon())).er, "0", transport);
      const clientPort = (c.conn.localAddr as Deno.NetAddr).port;
      const accepted = ownTcpSocket(target.port, "established", clientPort);
      assert.equal(hasNoDelay(accepted), true, `${transport}: the sim's socket`);
      // The check can tell: the test's client socket (Deno's default) has Nagle on.
      const client = ownTcpSocket(clientPort, "established", target.port);
      assert.equal(hasNoDelay(client), false, `${transport}: the client's socket`);
    } finally {
      c.close();
    }
  }
});
