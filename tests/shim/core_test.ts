// No core file, whatever `ulimit -c` the PAM host runs with (pam_mapi(8) SECURITY: the password is
// never in a file). The supervisor (a copy of the host's memory, the request with the password
// included) is not dumpable, and it and the helper run with RLIMIT_CORE 0/0, so a helper that
// crashes or is killed by a signal leaves no core. Through the real libpam (the driver) with the
// fake helper (plain and asan), and with the real helper killed while it waits on a server that
// never answers.
//
// The "no core file" checks need cores to be written as plain files in the crashing process's
// directory (core_pattern "core", Debian's default); each test first shows, as a control, that a
// process started without the module does leave a core there, holding the password. With a
// core_pattern that pipes to a program, only the limits are checked (and the test says so).
import assert from "node:assert/strict";
import { DENO_FLAGS, MAIN, pamRequest } from "../lib/helper.ts";
import {
  assertNoSanitizerReport,
  build,
  builtHelperCopy,
  helperDir,
  helperPids,
  line,
  pamConf,
  tempDir,
  VARIANTS,
} from "./lib.ts";

const NOBODY = 65534;
const PASSWORD = "pw-Core-Secret-7d1e";
const CORE_PATTERN = Deno.readTextFileSync("/proc/sys/kernel/core_pattern").trim();
/** Cores land as files in the crashing process's working directory. */
const LOCAL_CORES = !CORE_PATTERN.startsWith("|") && !CORE_PATTERN.includes("/");
if (!LOCAL_CORES) {
  console.log(`core_test: core_pattern is ${JSON.stringify(CORE_PATTERN)}: limits checked only`);
}

/** `sh -c 'ulimit -c unlimited && exec "$@"'`: the host allows cores of any size. */
const UNLIMITED = ["sh", "-c", 'ulimit -c unlimited && exec "$@"', "sh"];

/** [soft, hard] "Max core file size" of a process. */
async function coreLimit(pid: number): Promise<[string, string]> {
  const text = await Deno.readTextFile(`/proc/${pid}/limits`);
  const m = /^Max core file size\s+(\S+)\s+(\S+)/m.exec(text);
  assert.ok(m, text);
  return [m[1], m[2]];
}

async function ppid(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (await ppid(Number(e.name)) === pid) out.push(Number(e.name));
    } catch { /* gone */ }
  }
  return out;
}

async function waitFor<T>(what: string, f: () => Promise<T | null>, ms = 15000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Names in dir, and whether any file there holds the password. */
async function cores(dir: string): Promise<{ names: string[]; password: boolean }> {
  const names: string[] = [];
  let password = false;
  const needle = new TextEncoder().encode(PASSWORD);
  for await (const e of Deno.readDir(dir)) {
    names.push(e.name);
    const data = await Deno.readFile(`${dir}/${e.name}`);
    outer: for (let i = 0; i + needle.length <= data.length; i++) {
      for (let j = 0; j < needle.length; j++) if (data[i + j] !== needle[j]) continue outer;
      password = true;
      break;
    }
  }
  return { names: names.sort(), password };
}

/** A working directory for a crash; owned by `uid`. */
async function crashDir(parent: string, name: string, uid = 0): Promise<string> {
  const d = `${parent}/${name}`;
  await Deno.mkdir(d, { mode: 0o755 });
  await Deno.chown(d, uid, uid);
  return d;
}

function spawn(
  argv: string[],
  opts: { cwd: string; env?: Record<string, string>; stdin?: string },
) {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: opts.cwd,
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    w.write(new TextEncoder().encode(opts.stdin)).then(() => w.close()).catch(() => {});
  }
  const output = child.output().then((o) => ({
    code: o.code,
    signal: o.signal,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  }));
  return { pid: child.pid, output };
}

/** Kills a host still running after a failed check (its supervisor then kills the helper). */
async function stop(p: ReturnType<typeof spawn>): Promise<void> {
  try {
    Deno.kill(p.pid, "SIGKILL");
  } catch { /* already gone */ }
  await p.output;
}

/**
 * Shows that a core is written here at all: `argv` runs with unlimited cores and dies, by itself
 * or by the SIGABRT sent once `ready` resolves; its core must hold the password.
 */
async function controlCore(
  argv: string[],
  cwd: string,
  stdin: string,
  ready?: () => Promise<unknown>,
) {
  if (!LOCAL_CORES) return;
  const env = { PATH: "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/root" };
  const p = spawn([...UNLIMITED, ...argv], { cwd, stdin, env });
  if (ready) {
    await ready();
    Deno.kill(p.pid, "SIGABRT");
  }
  const out = await p.output;
  assert.equal(out.signal, ready ? "SIGABRT" : "SIGSEGV", out.stderr);
  const c = await cores(cwd);
  assert.ok(c.names.length > 0, "control: no core written outside the module");
  assert.ok(c.password, "control: the core holds the password");
  for (const n of c.names) await Deno.remove(`${cwd}/${n}`);
}

for (const v of VARIANTS) {
  // ASan turns core files off in its own process unless told not to; the host must allow them.
  const env = v.name === "asan"
    ? { ...v.env, ASAN_OPTIONS: `${v.env.ASAN_OPTIONS}:disable_coredump=0` }
    : v.env;

  Deno.test(`${v.name}: no core file from the helper or the supervisor, whatever ulimit -c`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    // The host runs as nobody, so that /proc shows whether the supervisor is dumpable.
    await Deno.writeTextFile(`${dir}/pids`, "");
    await Deno.chown(`${dir}/pids`, NOBODY, NOBODY);
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", [`helper=${helper}`, "daemon=off"])],
    });
    const cwd = await crashDir(dir, "cwd", NOBODY);
    const host = spawn([
      ...UNLIMITED,
      "setpriv",
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      v.driver,
      "--user",
      "hang",
      "--password",
      PASSWORD,
      conf,
      "mapi",
    ], { cwd, env });
    let out;
    try {
      const helperPid = await waitFor("the helper", async () => {
        const pids = await helperPids(dir);
        return pids.length >= 2 ? pids[0][0] : null;
      });
      const sup = await ppid(helperPid);
      assert.equal(await ppid(sup), host.pid);
      const limits = {
        host: await coreLimit(host.pid),
        supervisor: await coreLimit(sup),
        helper: await coreLimit(helperPid),
      };
      // The files in /proc/PID (not the directory) of a process that is not dumpable are root's.
      const owners = {
        host: (await Deno.stat(`/proc/${host.pid}/environ`)).uid,
        supervisor: (await Deno.stat(`/proc/${sup}/environ`)).uid,
      };
      Deno.kill(helperPid, "SIGABRT");
      out = await host.output;
      assertNoSanitizerReport(out.stderr);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /^auth=PAM_SERVICE_ERR$/m);
      if (LOCAL_CORES) assert.deepEqual((await cores(cwd)).names, [], "a core was written");
      assert.deepEqual(limits, {
        host: ["unlimited", "unlimited"],
        supervisor: ["0", "0"],
        helper: ["0", "0"],
      });
      assert.deepEqual(owners, { host: NOBODY, supervisor: 0 }, "the supervisor is dumpable");
    } finally {
      await stop(host);
    }

    // A helper that crashes by itself (SIGSEGV after a success reply), with a root host.
    const cwd2 = await crashDir(dir, "cwd2");
    const crash = spawn([
      ...UNLIMITED,
      v.driver,
      "--user",
      "crash",
      "--password",
      PASSWORD,
      conf,
      "mapi",
    ], {
      cwd: cwd2,
      env,
    });
    out = await crash.output;
    assertNoSanitizerReport(out.stderr);
    assert.match(out.stdout, /^auth=PAM_SERVICE_ERR$/m);
    if (LOCAL_CORES) assert.deepEqual((await cores(cwd2)).names, [], "a core was written");

    // Control: the same helper started without the module does leave a core with the password
    // (it crashes by itself, as above).
    const ctl = await crashDir(dir, "control");
    await controlCore([helper], ctl, pamRequest({ user: "crash", password: PASSWORD }));
  });
}

Deno.test("plain: no core file from the real helper killed while it waits on a server", async () => {
  const { dir, helper } = await builtHelperCopy();
  // A server that accepts and never answers.
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  let accepted = 0;
  const serving = (async () => {
    for await (const c of server) {
      held.push(c);
      accepted++;
    }
  })();
  const url = `http://127.0.0.1:${server.addr.port}/kopano`;
  const connected = (n: number) =>
    waitFor("a connection", () => Promise.resolve(accepted >= n ? true : null));
  try {
    const conf = await pamConf(dir, {
      mapi: [
        line(VARIANTS[0], "auth", [
          `helper=${helper}`,
          "daemon=off",
          `socket=${url}`,
          "timeout=60",
        ]),
      ],
    });
    const cwd = await crashDir(dir, "cwd");
    const host = spawn([...UNLIMITED, VARIANTS[0].driver, "--password", PASSWORD, conf, "mapi"], {
      cwd,
    });
    try {
      await connected(1);
      const [sup] = await childrenOf(host.pid);
      const [helperPid] = await childrenOf(sup);
      const limits = { host: await coreLimit(host.pid), helper: await coreLimit(helperPid) };
      Deno.kill(helperPid, "SIGABRT");
      const out = await host.output;
      assert.match(out.stdout, /^auth=PAM_SERVICE_ERR$/m);
      if (LOCAL_CORES) assert.deepEqual((await cores(cwd)).names, [], "a core was written");
      assert.deepEqual(limits, { host: ["unlimited", "unlimited"], helper: ["0", "0"] });
    } finally {
      await stop(host);
    }

    // Control: the helper's code on the same Deno, started without the module, leaves a core
    // that holds the password.
    const ctl = await crashDir(await tempDir(), "control");
    await controlCore(
      [Deno.execPath(), ...DENO_FLAGS, MAIN, "--pam"],
      ctl,
      pamRequest({ user: "alice", password: PASSWORD, args: [`socket=${url}`, "timeout=60"] }),
      () => connected(2),
    );
  } finally {
    server.close();
    for (const c of held) c.close();
    await serving.catch(() => {});
  }
});
