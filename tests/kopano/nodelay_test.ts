// No request can wait for a delayed ACK: on TCP (http:// and under TLS) the helper sets
// TCP_NODELAY before its first byte goes out, and every request leaves in one write, on every
// transport. Without either, a login over https:// took ~40 ms longer per Nagle stall (issue 13).
// Observed with strace on the real helper process: which system calls it made on the socket it
// connected to the server, not a timing that load could blur.
import assert from "node:assert/strict";
import { run } from "../../scripts/lib/run.ts";
import { simEnv, testPki } from "../sim/lib/env.ts";
import { DENO_FLAGS, MAIN, pamRequest } from "../lib/helper.ts";

/** The traced calls made on one file descriptor, from its connect() to its close(). */
interface SocketCalls {
  fd: string;
  calls: string[];
}

/** Finds the descriptor connected to `peer` (a strace rendering of the address) and its calls. */
function callsOnSocket(trace: string, peer: string): SocketCalls {
  // "1234  connect(21, {... sin_port=htons(236) ...}, 16) = -1 EINPROGRESS (...)"
  const lines = trace.split("\n").map((l) => l.replace(/^\d+\s+/, ""));
  const start = lines.findIndex((l) => l.startsWith("connect(") && l.includes(peer));
  if (start < 0) throw new Error(`no connect() to ${peer} in the trace:\n${trace}`);
  const fd = /^connect\((\d+),/.exec(lines[start])![1];
  const calls: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (/^\w+\((\d+),/.exec(l)?.[1] !== fd) continue;
    if (l.startsWith("close(")) break;
    calls.push(l);
  }
  return { fd, calls };
}

const WRITES = /^(write|writev|sendto|sendmsg)\(/;

Deno.test("nodelay: TCP_NODELAY before the first byte, each request in one write", async () => {
  await using env = await simEnv({ unixPeer: "user" }); // the password is checked on file:// too
  const { sim, dir } = env;
  const pki = await testPki();
  const port = (url: string) => new URL(url).port;
  const cases = [
    { url: sim.urls.http[0], peer: `sin_port=htons(${port(sim.urls.http[0])})`, tcp: true },
    {
      url: sim.urls.https[0],
      peer: `sin_port=htons(${port(sim.urls.https[0])})`,
      tcp: true,
      tls: true,
    },
    { url: sim.urls.unix[0], peer: `sun_path="${dir}/server.sock"`, tcp: false },
  ];
  for (const c of cases) {
    const trace = `${dir}/trace`;
    sim.clearRequests();
    const r = await run("strace", [
      "-f",
      "-qq",
      "-o",
      trace,
      "-s",
      "16",
      "-e",
      "trace=connect,setsockopt,write,writev,sendto,sendmsg,close",
      Deno.execPath(),
      ...DENO_FLAGS,
      MAIN,
      "--pam",
    ], {
      env: { DENO_TLS_CA_STORE: "" },
      stdin: pamRequest({
        user: "bob",
        password: "bobpass",
        args: [`socket=${c.url}`, "service=imap", ...(c.tls ? [`cafile=${pki.caFile}`] : [])],
      }),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).result, "PAM_SUCCESS", `${c.url}: ${r.stdout}`);
    const { fd, calls } = callsOnSocket(await Deno.readTextFile(trace), c.peer);
    const nodelay = calls.findIndex((l) =>
      l.startsWith(`setsockopt(${fd}, SOL_TCP, TCP_NODELAY, [1], 4) = 0`)
    );
    const firstWrite = calls.findIndex((l) => WRITES.test(l));
    if (c.tcp) {
      assert.ok(nodelay >= 0 && nodelay < firstWrite, `${c.url}: ${calls.join("\n")}`);
    } else {
      assert.equal(nodelay, -1, "a UNIX socket has no Nagle: nothing to set");
    }
    // logon, getUser, logoff: three requests, three writes (under TLS the records are
    // encrypted; the handshake adds its own writes, so only plain text is counted).
    assert.equal(sim.requests.length, 3, c.url);
    if (!c.tls) {
      const writes = calls.filter((l) => WRITES.test(l));
      assert.equal(writes.length, 3, `${c.url}: ${writes.join("\n")}`);
      for (const w of writes) assert.match(w, /^\w+\(\d+, "POST \//);
    }
  }
});
