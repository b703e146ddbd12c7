// The bundled helper's code cache cannot be poisoned. Deno loads compiled V8 code from its cache
// directory before any of the helper's code runs; an attacker who can write there (a directory
// Deno made with the PAM host's umask 000, one owned by another user, or a file planted while it
// was writable) replaces the helper's code and a WRONG password passes, as root. The launcher
// (shim/launcher.c) makes the directory 0700 under umask 077 and runs Deno without any cache when
// the directory, its path or anything in it could have been written by anyone but root; the helper
// then logs why at warning. Through the real libpam (the driver), with a real attack
// (poison_code_cache.py, run as nobody): each refused case checks that the poisoned code did not
// run, and a control shows that the very same poisoned file, once root's, does run.
import assert from "node:assert/strict";
import { buildHelper, buildLauncher } from "../../scripts/lib/helper_build.ts";
import { launcherInfo, listTree } from "../helper/lib/built_checks.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import {
  build,
  line,
  LOG_ERR,
  LOG_WARNING,
  pamConf,
  PLAIN,
  ROOT,
  run,
  runDriver,
  tempDir,
  type Variant,
} from "./lib.ts";

const NOBODY = 65534;
const POISON = `${ROOT}/tests/shim/poison_code_cache.py`;

interface Setup {
  dir: string;
  helper: string;
  /** The bundle a launcher is built with (src/main.ts)... */
  bundle: string;
  /** ... and the one it runs for --pam, on every login: the one to poison. */
  pamBundle: string;
  cache: string;
  deno: string;
  flags: string[];
  marker: string;
  url: string;
}

let setup: Promise<Setup> | undefined;

/** One bundle helper for the file (cache DIR/cache), and a Kopano-compatible server. */
function helperSetup(): Promise<Setup> {
  setup ??= (async () => {
    await build();
    const dir = await tempDir();
    Deno.env.set("PAM_MAPI_HELPER_MODE", "bundle");
    Deno.env.set("PAM_MAPI_CACHE_DIR", `${dir}/cache`);
    try {
      await buildHelper(ROOT, dir);
    } finally {
      Deno.env.delete("PAM_MAPI_HELPER_MODE");
      Deno.env.delete("PAM_MAPI_CACHE_DIR");
    }
    const helper = `${dir}/pam_mapi_helper`;
    const info = await launcherInfo(helper);
    assert.ok(info, "not a launcher");
    const sim = await startKopanoSim({ listen: ["127.0.0.1:0"] });
    globalThis.addEventListener("unload", () => sim.close());
    return {
      dir,
      helper,
      bundle: info.bundle,
      pamBundle: info.pam_bundle,
      cache: info.cache,
      deno: info.deno,
      flags: info.flags.split(" "),
      marker: `${dir}/marker`,
      url: sim.urls.http[0],
    };
  })();
  return setup;
}

/** A fresh cache directory as the case needs it (or none). */
async function freshCache(s: Setup, mode: number | null, uid = 0): Promise<void> {
  await Deno.remove(s.cache, { recursive: true }).catch(() => {});
  await Deno.remove(s.marker).catch(() => {});
  if (mode === null) return;
  await Deno.mkdir(s.cache);
  await Deno.chown(s.cache, uid, uid);
  await Deno.chmod(s.cache, mode);
}

/** The attack, as nobody, against `cache` (default: the helper's). */
async function poison(s: Setup, cache = s.cache) {
  const work = await Deno.makeTempDir({ dir: s.dir, prefix: "attacker_" });
  await Deno.chown(work, NOBODY, NOBODY);
  await Deno.chmod(work, 0o700);
  return await run("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "python3",
    POISON,
    work,
    s.pamBundle,
    `file://${s.pamBundle}`,
    cache,
    s.deno,
    s.marker,
    ...s.flags,
  ], { env: { PATH: "/usr/bin:/bin" } });
}

/** One login through libpam; `host` wraps the driver (e.g. to set its umask). */
async function login(s: Setup, password: string, helper = s.helper, host?: string) {
  const conf = await pamConf(s.dir, {
    mapi: [line(PLAIN, "auth", [`helper=${helper}`, "daemon=off", `socket=${s.url}`])],
  });
  const v: Variant = host ? { ...PLAIN, driver: host } : PLAIN;
  const args = ["--user", "alice", "--password", password, conf, "mapi"];
  return await runDriver(v, host ? [PLAIN.driver, ...args] : args);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** A wrong password is refused, the poisoned code did not run, and the launcher said why. */
async function refusedWithout(s: Setup, why: string): Promise<void> {
  const r = await login(s, "wrong");
  assert.equal(r.kv.auth, "PAM_AUTH_ERR", JSON.stringify(r.logs));
  assert.ok(!(await exists(s.marker)), "the poisoned code ran");
  assert.deepEqual(r.logs.filter((l) => l.priority === LOG_WARNING).map((l) => l.message), [
    `code cache ${s.cache} not used: ${why}; running without it`,
  ]);
  // The right password still works, without a cache.
  const ok = await login(s, "secret");
  assert.equal(ok.kv.auth, "PAM_SUCCESS", JSON.stringify(ok.logs));
}

Deno.test("code cache: a host with umask 000 and no cache directory: made 0700, not poisonable", async () => {
  const s = await helperSetup();
  await freshCache(s, null);
  const umask000 = `${s.dir}/umask000`;
  await Deno.writeTextFile(umask000, '#!/bin/sh\numask 000 && exec "$@"\n');
  await Deno.chmod(umask000, 0o755);
  const r = await login(s, "secret", s.helper, umask000);
  assert.equal(r.kv.auth, "PAM_SUCCESS", JSON.stringify(r.logs));
  assert.equal((await Deno.stat(s.cache)).mode! & 0o7777, 0o700);
  const entries = await listTree(s.cache);
  assert.ok(entries.includes("v8_code_cache_v2"), entries.join(" "));
  for (const name of entries) {
    const st = await Deno.lstat(`${s.cache}/${name}`);
    assert.equal(st.uid, 0, name);
    assert.equal(st.mode! & 0o077, 0, `${name} is open to others`);
  }
  // nobody cannot plant anything: the attack fails at the last step.
  const p = await poison(s);
  assert.equal(p.code, 1, p.stdout + p.stderr);
  assert.match(p.stdout, /cannot replace .*Permission denied/);
  const w = await login(s, "wrong");
  assert.equal(w.kv.auth, "PAM_AUTH_ERR");
  assert.ok(!(await exists(s.marker)));
  assert.deepEqual(w.logs.filter((l) => l.priority === LOG_WARNING), [], "the cache is trusted");
});

Deno.test("code cache: on a machine without node, the second login still uses the cache", async () => {
  // A mail server has no Node.js: where PATH finds no `node`, `deno run` links
  // DENO_DIR/node_compat_bin/node to itself, and the launcher, rightly refusing a link in the
  // cache, ran every later login without it (issue 19). Here a private mount namespace covers
  // each `node` on the launcher's PATH with an empty, non-executable file.
  const s = await helperSetup();
  await freshCache(s, null);
  const empty = `${s.dir}/not_node`;
  await Deno.writeTextFile(empty, "", { mode: 0o644 });
  const noNode = `${s.dir}/no_node`;
  await Deno.writeTextFile(
    noNode,
    `#!/bin/sh
exec unshare --mount --propagation private sh -c '
for f in /usr/bin/node /bin/node; do
  if [ -x "$f" ]; then mount --bind "$0" "$f" || exit 97; fi
done
for f in /usr/bin/node /bin/node; do [ ! -x "$f" ] || exit 98; done
exec "$@"' "${empty}" "$@"
`,
    { mode: 0o755 },
  );
  for (const password of ["secret", "wrong", "secret"]) {
    const r = await login(s, password, s.helper, noNode);
    assert.equal(r.kv.auth, password === "secret" ? "PAM_SUCCESS" : "PAM_AUTH_ERR");
    assert.deepEqual(r.logs.filter((l) => l.priority === LOG_WARNING), [], "the cache was refused");
  }
  const entries = await listTree(s.cache);
  assert.ok(entries.includes("v8_code_cache_v2"), entries.join(" "));
  for (const name of entries) {
    const st = await Deno.lstat(`${s.cache}/${name}`);
    assert.ok(st.isFile || st.isDirectory, `${name} is neither a file nor a directory`);
  }
  assert.ok(!entries.some((e) => e.startsWith("node_compat_bin")), entries.join(" "));
});

Deno.test("code cache: a world-writable cache directory is not used, poisoned or not", async () => {
  const s = await helperSetup();
  await freshCache(s, 0o777);
  const p = await poison(s);
  assert.equal(p.code, 0, p.stdout + p.stderr);
  await refusedWithout(s, `directory ${s.cache} is writable by group or others`);
  // Deno wrote nothing there (it ran with DENO_DIR=/dev/null): only the attacker's file is in it.
  assert.deepEqual(await listTree(s.cache), ["v8_code_cache_v2"]);
  assert.equal((await Deno.stat(`${s.cache}/v8_code_cache_v2`)).uid, NOBODY);
  // check, run by hand, says the same (plain and --json).
  const args = ["check", "alice", `socket=${s.url}`];
  const warning = `code cache ${s.cache} not used: directory ${s.cache} is writable by group or ` +
    "others; running without it";
  const plain = await run(s.helper, args, { stdin: "wrong\n", env: {} });
  assert.equal(plain.code, 1, plain.stdout + plain.stderr);
  assert.ok(plain.stdout.includes(`syslog warning: ${warning}\n`), plain.stdout);
  const json = await run(s.helper, [args[0], "--json", ...args.slice(1)], {
    stdin: "wrong\n",
    env: {},
  });
  assert.equal(json.code, 1, json.stdout + json.stderr);
  assert.deepEqual(JSON.parse(json.stdout).log[0], { priority: "warning", message: warning });
  assert.ok(!(await exists(s.marker)));
});

Deno.test("code cache: a cache directory another user owns is not used", async () => {
  const s = await helperSetup();
  await freshCache(s, 0o700, NOBODY);
  const p = await poison(s);
  assert.equal(p.code, 0, p.stdout + p.stderr);
  await refusedWithout(s, `directory ${s.cache} is not owned by root`);
});

Deno.test("code cache: a file planted while the directory was writable is not used after the fix", async () => {
  const s = await helperSetup();
  await freshCache(s, 0o777);
  const p = await poison(s);
  assert.equal(p.code, 0, p.stdout + p.stderr);
  // The administrator fixes the directory, but not what is in it.
  await Deno.chmod(s.cache, 0o700);
  await refusedWithout(s, `${s.cache}/v8_code_cache_v2 is not owned by root`);
  // A root-owned file others may write is no better.
  await Deno.chown(`${s.cache}/v8_code_cache_v2`, 0, 0);
  await Deno.chmod(`${s.cache}/v8_code_cache_v2`, 0o606);
  await refusedWithout(s, `${s.cache}/v8_code_cache_v2 is writable by group or others`);
  // Nor is anything but files and directories (a link could lead anywhere).
  await Deno.remove(`${s.cache}/v8_code_cache_v2`);
  await Deno.symlink("/etc/hostname", `${s.cache}/v8_code_cache_v2`);
  await refusedWithout(s, `${s.cache}/v8_code_cache_v2 is not a regular file or directory`);
});

Deno.test("code cache: control: the same poisoned file, made root's, does run", async () => {
  // The checks above are what stops the attack: here root itself puts the attacker's file in a
  // root-owned 0700 cache, which the launcher trusts, and a wrong password passes.
  const s = await helperSetup();
  const staging = `${s.dir}/staging`;
  await Deno.remove(staging, { recursive: true }).catch(() => {});
  await Deno.mkdir(staging);
  await Deno.chown(staging, NOBODY, NOBODY);
  const p = await poison(s, staging);
  assert.equal(p.code, 0, p.stdout + p.stderr);
  await freshCache(s, 0o700);
  await Deno.copyFile(`${staging}/v8_code_cache_v2`, `${s.cache}/v8_code_cache_v2`);
  await Deno.chmod(`${s.cache}/v8_code_cache_v2`, 0o600);
  const r = await login(s, "wrong");
  assert.equal(r.kv.auth, "PAM_SUCCESS", "the poisoned entry was not loaded: is the attack stale?");
  assert.equal(await Deno.readTextFile(s.marker), "poisoned code ran\n");
  await freshCache(s, null);
});

Deno.test("code cache: a parent directory others could write, or a missing one", async () => {
  const s = await helperSetup();
  const wdir = `${s.dir}/writable`;
  await Deno.mkdir(wdir, { recursive: true });
  await Deno.chmod(wdir, 0o777);
  const helper = `${s.dir}/launcher_wdir`;
  const cache = `${wdir}/cache`;
  await buildLauncher(ROOT, helper, { deno: s.deno, bundle: s.bundle, cache });
  let r = await login(s, "secret", helper);
  assert.equal(r.kv.auth, "PAM_SUCCESS", JSON.stringify(r.logs));
  assert.deepEqual(r.logs.filter((l) => l.priority === LOG_WARNING).map((l) => l.message), [
    `code cache ${cache} not used: ${wdir}: directory ${wdir} is writable by group or others; ` +
    "running without it",
  ]);
  assert.ok(!(await exists(cache)), "made a cache directory in a directory others can write");
  const missing = `${s.dir}/nothing/cache`;
  await buildLauncher(ROOT, helper, { deno: s.deno, bundle: s.bundle, cache: missing });
  r = await login(s, "secret", helper);
  assert.equal(r.kv.auth, "PAM_SUCCESS", JSON.stringify(r.logs));
  assert.deepEqual(r.logs.filter((l) => l.priority === LOG_WARNING).map((l) => l.message), [
    `code cache ${missing} not used: ${s.dir}/nothing: No such file or directory; running without it`,
  ]);
});

Deno.test("launcher: a Deno runtime or bundle others could replace is not run", async () => {
  const s = await helperSetup();
  const udir = `${s.dir}/user`;
  await Deno.mkdir(udir, { recursive: true });
  await Deno.chown(udir, NOBODY, NOBODY);
  await Deno.remove(`${udir}/deno`).catch(() => {});
  await Deno.symlink(s.deno, `${udir}/deno`);
  // A launcher built with copy.js runs copy_pam.js for the logins.
  await Deno.copyFile(s.bundle, `${s.dir}/copy.js`);
  const bundle = `${s.dir}/copy_pam.js`;
  await Deno.copyFile(s.pamBundle, bundle);
  const helper = `${s.dir}/launcher_refused`;
  const refused = async (paths: { deno: string; bundle: string }, why: string) => {
    await buildLauncher(ROOT, helper, { ...paths, cache: s.cache });
    const r = await login(s, "secret", helper);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR", JSON.stringify(r.logs));
    assert.equal(r.logs.length, 1, JSON.stringify(r.logs));
    assert.equal(r.logs[0].priority, LOG_ERR);
    assert.match(
      r.logs[0].message,
      /^helper .* exited with status 3; user=alice result=PAM_SERVICE_ERR; stderr: /,
    );
    assert.ok(r.logs[0].message.endsWith(`; stderr: pam_mapi_helper: ${why}`), r.logs[0].message);
  };
  await refused(
    { deno: `${udir}/deno`, bundle: s.bundle },
    `the Deno runtime ${udir}/deno is refused: directory ${udir} is not owned by root`,
  );
  const copy = { deno: s.deno, bundle: `${s.dir}/copy.js` };
  await Deno.chmod(bundle, 0o664);
  await refused(copy, `the bundle ${bundle} is refused: writable by group or others`);
  await Deno.chmod(bundle, 0o644);
  await Deno.chown(bundle, NOBODY, NOBODY);
  await refused(copy, `the bundle ${bundle} is refused: not owned by root`);
  await refused(
    { deno: s.deno, bundle: `${s.dir}/missing.js` },
    `the bundle ${s.dir}/missing_pam.js is refused: No such file or directory`,
  );
});

Deno.test("launcher: run by another user, it trusts that user's own files and cache", async () => {
  // A user running `check` with a helper built in their own directory: what they own is as
  // trustworthy as they are; root's files too, nobody else's.
  const s = await helperSetup();
  const home = `${s.dir}/home`;
  await Deno.mkdir(home, { recursive: true });
  await Deno.chown(home, NOBODY, NOBODY);
  const helper = `${home}/launcher`;
  const cache = `${home}/cache`;
  await buildLauncher(ROOT, helper, { deno: s.deno, bundle: s.bundle, cache });
  await Deno.chown(helper, NOBODY, NOBODY);
  const asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups", helper];
  const args = ["check", "--json", "alice", `socket=${s.url}`];
  const r = await run("setpriv", [...asNobody, ...args], { stdin: "secret\n", env: {} });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).log.map((l: { priority: string }) => l.priority), ["info"]);
  assert.equal((await Deno.stat(cache)).uid, NOBODY);
  assert.ok((await listTree(cache)).includes("v8_code_cache_v2"));
});
