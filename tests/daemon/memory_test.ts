// The resident helper's memory stays flat and it leaks no file descriptor: once warmed up (V8's
// heap and the allocator settle within the first 20 000 logins or so), its RSS grows by less than
// 16 MB and its open descriptors do not grow over many more logins from 8 clients at once, over
// TCP, TLS and the UNIX socket, right and wrong passwords, with and without service=; and it stays
// under 96 MB all along. 10 000 logins by default; PAM_MAPI_DAEMON_LOGINS=100000 runs the issue's
// full count (PAM_MAPI_DAEMON_WARMUP sets the warm-up, 20 000 by default).
import assert from "node:assert/strict";
import { login, procUsage, simAllTransports, startDaemon, status } from "./lib.ts";

const LOGINS = Number(Deno.env.get("PAM_MAPI_DAEMON_LOGINS") ?? 10_000);
const CLIENTS = 8;
const WARMUP = Number(Deno.env.get("PAM_MAPI_DAEMON_WARMUP") ?? 20_000);
const MAX_RSS_MB = 96;

Deno.test(`memory: RSS grows < 16 MB and no descriptor leaks over ${LOGINS} logins`, async () => {
  await using w = await simAllTransports({ disabledFeatures: "imap", maxLoggedRequests: 100 });
  const sim = w.sim;
  await using d = await startDaemon();
  {
    const targets = [w.args.tcp, w.args.tls, w.args.unix];
    let next = 0;
    const counts: Record<string, number> = {};
    const run = async (total: number) => {
      const client = async () => {
        for (let i = next++; i < total; i = next++) {
          const wrong = i % 5 === 4;
          const r = await login(d.socket, {
            user: "alice",
            password: wrong ? "wrong" : "secret",
            args: [...targets[i % 3], ...(i % 2 ? ["service=pop3"] : [])],
          });
          counts[r.result] = (counts[r.result] ?? 0) + 1;
          assert.equal(r.result, wrong ? "PAM_AUTH_ERR" : "PAM_SUCCESS", JSON.stringify(r));
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, client));
    };
    /**
     * RSS, and descriptors other than the kept-alive Kopano connections (how many of those are
     * idle depends on how the 8 clients happened to overlap, up to 8 per server).
     */
    const usage = async () => {
      await new Promise((r) => setTimeout(r, 200)); // every connection back in the pool
      const u = procUsage(d.pid);
      const kopano = ((await status(d.socket)).kopano_connections as { open: number }).open;
      return { rssKb: u.rssKb, fds: u.fds - kopano, kopano };
    };
    const start = await usage();
    await run(WARMUP);
    const before = await usage();
    const t0 = performance.now();
    await run(WARMUP + LOGINS);
    const seconds = (performance.now() - t0) / 1000;
    const after = await usage();
    const grewMb = (after.rssKb - before.rssKb) / 1024;
    console.log(
      `RSS ${start.rssKb} KiB at start, ${before.rssKb} KiB after ${WARMUP} logins; ` +
        `${LOGINS} more in ${seconds.toFixed(1)} s (${(LOGINS / seconds).toFixed(0)}/s, ` +
        `${CLIENTS} clients): RSS ${after.rssKb} KiB (${grewMb.toFixed(1)} MB more), ` +
        `descriptors besides Kopano connections ${before.fds} -> ${after.fds} ` +
        `(Kopano connections ${before.kopano} -> ${after.kopano})`,
    );
    assert.ok(grewMb < 16, `RSS grew by ${grewMb.toFixed(1)} MB`);
    assert.ok(after.rssKb < MAX_RSS_MB * 1024, `RSS ${after.rssKb} KiB`);
    assert.ok(after.fds <= before.fds, `fds ${before.fds} -> ${after.fds}`);
    assert.equal(sim.openSessions(), 0);
    const s = await status(d.socket);
    const pool = s.kopano_connections as { open: number; opened: number };
    assert.ok(pool.open <= 3 * CLIENTS, `${pool.open} connections open`);
    assert.ok(pool.opened <= 3 * CLIENTS * 2, `${pool.opened} connections opened in all`);
    assert.equal(s.internal_errors, 0);
  }
});
