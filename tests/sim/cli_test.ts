// The command line (`deno task kopano-sim`, tests/kopano_sim/main.ts) as a real subprocess:
// listening lines, flags, --users, faults from the command line, clean exit on signals.

import assert from "node:assert/strict";
import { call, parse, withConn } from "./lib/calls.ts";
import { testPki } from "./lib/env.ts";
import { exchange, targetOf } from "./lib/raw_http.ts";
import { features, field, getUser, logon, post } from "./lib/soap.ts";

const MAIN = new URL("../kopano_sim/main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

interface Running {
  child: Deno.ChildProcess;
  urls: string[];
  /** Stops with `signal` and returns the exit code and everything printed. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts the CLI and waits for `expected` "listening" lines. */
async function startCli(args: string[], expected: number): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const errText = new Response(child.stderr).text();
  let stdout = "";
  const urls: string[] = [];
  const deadline = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    while (urls.length < expected) {
      const { done, value } = await out.read();
      if (done) break;
      stdout += value;
      urls.splice(0, urls.length, ...[...stdout.matchAll(/^listening (\S+)$/gm)].map((m) => m[1]));
    }
  } finally {
    clearTimeout(deadline);
  }
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      child.kill(signal);
    } catch {
      // already exited
    }
    for (;;) {
      const { done, value } = await out.read();
      if (done) break;
      stdout += value;
    }
    const { code } = await child.status;
    return { code, stdout, stderr: await errText };
  };
  if (urls.length < expected) {
    const r = await stop();
    throw new Error(`CLI did not start: ${JSON.stringify(r)}`);
  }
  return { child, urls, stop };
}

async function runCli(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: every listener, --users, --disabled-features, --version; SIGTERM exits cleanly", async () => {
  const pki = await testPki();
  const dir = await Deno.makeTempDir({ prefix: "sim_cli_" });
  try {
    await Deno.writeTextFile(
      `${dir}/users.json`,
      JSON.stringify([
        { name: "erin", password: "pw1", enabled: ["imap"], disabled: ["mobile"] },
        { name: "frank", password: "pw2", admin: true, active: true },
      ]),
    );
    const sock = `${dir}/server.sock`;
    const sim = await startCli([
      "--listen=127.0.0.1:0",
      "--listen",
      "127.0.0.1:0",
      "--unix",
      sock,
      "--tls-listen",
      "127.0.0.1:0",
      "--cert",
      pki.certFile,
      "--key",
      pki.keyFile,
      "--users",
      `${dir}/users.json`,
      "--disabled-features",
      "imap pop3 webapp",
      "--version",
      "8.7.0",
    ], 4);
    assert.match(sim.urls[0], /^http:\/\/127\.0\.0\.1:\d+\/kopano$/);
    assert.match(sim.urls[1], /^http:\/\/127\.0\.0\.1:\d+\/kopano$/);
    assert.notEqual(sim.urls[0], sim.urls[1]);
    assert.match(sim.urls[2], /^https:\/\/127\.0\.0\.1:\d+\/kopano$/);
    assert.equal(sim.urls[3], `file://${sock}`);
    assert.equal((await Deno.stat(sock)).mode! & 0o777, 0o666);
    const ca = [await Deno.readTextFile(pki.caFile)];
    for (const url of sim.urls) {
      await withConn(targetOf(url, ca), async (c) => {
        const l = await call(c, logon({ user: "erin", password: "pw1" }));
        assert.equal(l.er, "0", url);
        assert.equal(field(l.value, "lpszVersion"), "0,8,7,0");
        const g = await call(c, getUser(field(l.value, "ulSessionId")!));
        assert.deepEqual(features(g.value.lpsUser), {
          enabled: ["imap", "outlook"],
          disabled: ["mobile", "pop3", "webapp"],
        });
      });
    }
    assert.equal(
      parse((await exchange(targetOf(sim.urls[0]), post(logon(), { close: true })))!).er,
      "2147483657",
    );
    const r = await sim.stop("SIGTERM");
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(() => Deno.stat(sock), Deno.errors.NotFound, "socket removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: defaults to 127.0.0.1:0 with the fixtures' users; SIGINT exits cleanly", async () => {
  const sim = await startCli([], 1);
  try {
    assert.match(sim.urls[0], /^http:\/\/127\.0\.0\.1:\d+\/kopano$/);
    assert.equal(
      parse(
        (await exchange(
          targetOf(sim.urls[0]),
          post(logon({ user: "bob", password: "bobpass" }), { close: true }),
        ))!,
      ).er,
      "0",
    );
  } finally {
    const r = await sim.stop("SIGINT");
    assert.equal(r.code, 0, r.stderr);
  }
});

Deno.test("cli: --unix-peer, --session-timeout, --idle-timeout, --fault (raw from a file), --verbose", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sim_cli_" });
  try {
    const reply =
      "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 5\r\nConnection: close\r\n\r\nshort";
    await Deno.writeTextFile(`${dir}/reply.http`, reply);
    const sim = await startCli([
      "--unix",
      `${dir}/s.sock`,
      "--listen",
      "127.0.0.1:0",
      "--unix-peer",
      "user",
      "--session-timeout",
      "0.6",
      "--idle-timeout",
      "0.3",
      "--fault",
      `raw=${dir}/reply.http@getUser*1`,
      "--fault",
      "http-503+tcp",
      "--verbose",
    ], 2);
    const unix = targetOf(sim.urls.find((u) => u.startsWith("file:"))!);
    const tcp = targetOf(sim.urls.find((u) => u.startsWith("http:"))!);
    assert.equal((await exchange(tcp, post(logon(), { close: true })))!.status, 503);
    await withConn(unix, async (c) => {
      assert.equal(
        (await call(c, logon({ password: "wrong", flags: 0 }))).er,
        "2147483657",
        "peer is a user",
      );
      const sid = field((await call(c, logon())).value, "ulSessionId")!;
      await c.write(post(getUser(sid)));
      const teapot = (await c.response())!;
      assert.deepEqual([teapot.status, new TextDecoder().decode(teapot.body)], [418, "short"]);
    });
    await withConn(unix, async (c) => {
      const sid = field((await call(c, logon())).value, "ulSessionId")!;
      assert.equal((await call(c, getUser(sid))).er, "0", "raw fault used up");
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await call(c, getUser(sid))).er, "2147483664", "session timed out");
    });
    const r = await sim.stop();
    assert.equal(r.code, 0);
    assert.match(r.stderr, /#1 tcp conn \d+: POST logon/);
    assert.match(r.stderr, /injected raw/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --help, and bad arguments exit non-zero with a message", async () => {
  const help = await runCli(["run", "-A", MAIN, "--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--listen",
      "--unix",
      "--tls-listen",
      "--users",
      "--disabled-features",
      "--version",
      "--unix-peer",
      "--fault",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  const dir = await Deno.makeTempDir({ prefix: "sim_cli_" });
  try {
    await Deno.writeTextFile(`${dir}/bad.json`, `[{"name": "x"}]`);
    const cases: Array<[string[], number, RegExp]> = [
      [["--bogus"], 2, /Unknown option '--bogus'/],
      [["--tls-listen", "127.0.0.1:0"], 2, /go together/],
      [["--users", `${dir}/bad.json`], 2, /users\[0\]\.password/],
      [["--users", `${dir}/missing.json`], 2, /No such file/],
      [["--fault", "explode"], 2, /unknown fault kind/],
      [["--session-timeout", "soon"], 2, /positive number/],
      [["--unix-origin", "pid"], 2, /connection or socket/],
      [["--version", "11"], 1, /invalid server version/],
      [["--unix-peer", "root"], 1, /unixPeer must be/],
      [["--listen", "nohost"], 1, /bad address/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await runCli(["run", "-A", MAIN, ...args]);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, msg, args.join(" "));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: deno task kopano-sim runs main.ts", async () => {
  const r = await runCli(["task", "-q", "kopano-sim", "--help"], ROOT);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: deno task kopano-sim/);
});
