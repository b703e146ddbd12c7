// The bundled helper's launcher (shim/launcher.c) closes every descriptor above 2 before Deno
// starts, whatever the command. The admin guide's way to run the resident helper without systemd is
// `runuser -u pam_mapi -- pam_mapi_helper serve` from an administrator's shell, which may hold a
// secret file open; so may whatever runs `check` or `--pam`. Each command here starts from a shell
// holding /etc/shadow open on fd 7 and fd 250, is caught once Deno runs (its /proc/PID/exe is the
// runtime) while it waits (for connections, the password, its request), and its descriptors are
// read from /proc/PID/fd: none may lead to /etc/shadow.
import assert from "node:assert/strict";
import { Sandbox } from "../../scripts/lib/sandbox.ts";
import { launcherInfo } from "../lib/built_checks.ts";
import { startResidentHelper, waitFor } from "../e2e/lib.ts";
import { buildLauncher } from "../../scripts/lib/helper_build.ts";
import { BUILT_HELPER, ROOT, runOk, tempDir } from "./lib.ts";

const NOT_ROOT = Deno.uid() !== 0;
const info = await launcherInfo(BUILT_HELPER).catch(() => null);
const SKIP = NOT_ROOT
  ? "SKIPPED, needs root (another user, a sandbox)"
  : info === null
  ? `SKIPPED, needs the bundle helper and its launcher (${BUILT_HELPER} is not one)`
  : null;
/** Opens the secret on two descriptors, then becomes the command (bash: fds above 9). */
const HOLDING_SHADOW = ["bash", "-c", 'exec 7</etc/shadow 250</etc/shadow; exec "$@"', "bash"];
const AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"];

/** Whether two paths are the same file. By device and inode, not by name: the name /proc shows
 * for a file of a process in another mount namespace depends on the reader's root (in a chroot,
 * the sandbox's processes show other paths than ours). */
async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([Deno.stat(a), Deno.stat(b)]).catch(() => [null, null]);
  return x !== null && y !== null && x.dev === y.dev && x.ino === y.ino;
}

/** Where each descriptor of `pid` above 2 leads (the secret by that name, however /proc shows
 * it). */
async function descriptors(pid: number): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for await (const e of Deno.readDir(`/proc/${pid}/fd`)) {
    const fd = `/proc/${pid}/fd/${e.name}`;
    const target = await sameFile(fd, "/etc/shadow")
      ? "/etc/shadow"
      : await Deno.readLink(fd).catch(() => "(gone)");
    if (Number(e.name) > 2) out.set(Number(e.name), target);
  }
  return out;
}

async function runsDeno(pid: number): Promise<boolean> {
  return await sameFile(`/proc/${pid}/exe`, info!.deno);
}

function assertNoSecret(fds: Map<number, string>, what: string): void {
  const leaked = [...fds].filter(([, target]) => target === "/etc/shadow");
  assert.deepEqual(leaked, [], `${what} holds /etc/shadow: ${JSON.stringify([...fds])}`);
}

/** Starts `argv` behind the shell holding the secret, as nobody, with stdin left open. */
async function caughtWaiting(argv: string[], helper = BUILT_HELPER): Promise<Map<number, string>> {
  const [cmd, ...args] = [...HOLDING_SHADOW, ...AS_NOBODY, helper, ...argv];
  const child = new Deno.Command(cmd, {
    args,
    clearEnv: true,
    env: { PATH: "/usr/bin:/bin" },
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor(() => runsDeno(child.pid), `${argv[0]} to run Deno`);
    return await descriptors(child.pid);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdin.close().catch(() => {});
  }
}

Deno.test({
  name: SKIP
    ? `the launcher closes inherited descriptors: ${SKIP}`
    : "the launcher closes inherited descriptors: check and --pam as nobody hold no fd of the shell",
  ignore: SKIP !== null,
  async fn() {
    for (const argv of [["check", "alice", "socket=http://127.0.0.1:9/"], ["--pam"]]) {
      assertNoSecret(await caughtWaiting(argv), argv[0]);
    }
  },
});

Deno.test({
  name: SKIP
    ? `the launcher closes inherited descriptors: ${SKIP}`
    : "the launcher closes inherited descriptors: also with its close() loop (no close_range)",
  ignore: SKIP !== null,
  async fn() {
    const dir = await tempDir();
    const fallback = `${dir}/pam_mapi_helper`;
    const paths = { deno: info!.deno, bundle: info!.bundle, cache: info!.cache };
    await buildLauncher(ROOT, fallback, paths, "-DPAM_MAPI_TEST_NO_CLOSE_RANGE");
    // It really makes no close_range call, and closes one descriptor at a time; the reference
    // launcher makes the one call.
    const trace = async (launcher: string) => {
      const out = `${dir}/trace`;
      const traced = ["-o", out, "-e", "trace=execve,close_range,close"];
      await runOk("strace", [...traced, ...HOLDING_SHADOW, launcher, "--launcher-info"]);
      const text = await Deno.readTextFile(out);
      return text.slice(text.indexOf(`execve("${launcher}"`)); // the launcher's calls only
    };
    const loop = await trace(fallback);
    assert.doesNotMatch(loop, /close_range\(/);
    assert.match(loop, /^close\(7\)\s+= 0$/m);
    assert.match(loop, /^close\(250\)\s+= 0$/m);
    assert.match(await trace(BUILT_HELPER), /^close_range\(3, 4294967295, 0\)\s+= 0$/m);
    assertNoSecret(await caughtWaiting(["--pam"], fallback), "--pam (close() loop)");
  },
});

/** /etc/passwd and /etc/group with a pam_mapi account (a uid the machine does not use). */
async function withServiceAccount(): Promise<{ passwd: string; group: string; uid: number }> {
  const passwd = await Deno.readTextFile("/etc/passwd");
  const group = await Deno.readTextFile("/etc/group");
  const used = new Set(
    [passwd, group].flatMap((t) => t.split("\n").map((l) => Number(l.split(":")[2]))),
  );
  const uid = [...Array(100).keys()].map((i) => 900 + i).find((n) => !used.has(n))!;
  return {
    passwd: `${passwd.trimEnd()}\npam_mapi:x:${uid}:${uid}::/nonexistent:/usr/sbin/nologin\n`,
    group: `${group.trimEnd()}\npam_mapi:x:${uid}:\n`,
    uid,
  };
}

Deno.test({
  name: SKIP
    ? `the launcher closes inherited descriptors: ${SKIP}`
    : "the launcher closes inherited descriptors: `runuser -u pam_mapi -- pam_mapi_helper serve` " +
      "from a shell holding /etc/shadow open",
  ignore: SKIP !== null,
  async fn() {
    const account = await withServiceAccount();
    await using sb = await Sandbox.open({
      files: { "/etc/passwd": account.passwd, "/etc/group": account.group },
    });
    // runuser opens a PAM session; the sandbox's pam.d denies everything else.
    await sb.pamService("runuser", [
      "auth sufficient pam_rootok.so",
      "account required pam_permit.so",
      "session required pam_permit.so",
    ]);
    const inside = async (cmd: string, args: string[]) => {
      const r = await sb.run(cmd, args);
      assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stdout}${r.stderr}`);
    };
    // As systemd's RuntimeDirectory=pam_mapi would have it, on a /run of the sandbox's own.
    await inside("mount", ["-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"]);
    await inside("install", [
      "-d",
      "-o",
      "pam_mapi",
      "-g",
      "pam_mapi",
      "-m",
      "0755",
      "/run/pam_mapi",
    ]);
    const helper = await sb.copyIn(BUILT_HELPER);
    const daemon = await startResidentHelper(
      sb,
      [...HOLDING_SHADOW, "runuser", "-u", "pam_mapi", "--", helper, "serve"],
      { helper, socket: "/run/pam_mapi/helper.sock" },
    );
    const proc = (await sb.processes()).find((p) => p.nsPid === daemon.pid);
    assert.ok(proc, `no process for the daemon's pid ${daemon.pid}`);
    const status = await Deno.readTextFile(`/proc/${proc.pid}/status`);
    assert.match(status, new RegExp(`^Uid:\\s+${account.uid}\\s`, "m"), "it runs as pam_mapi");
    assert.ok(await runsDeno(proc.pid), "the daemon is Deno, started by the launcher");
    assertNoSecret(await descriptors(proc.pid), "serve");
    await daemon.stop();
  },
});
