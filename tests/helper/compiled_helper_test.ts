// The helper as a `deno compile` executable. Building one needs Deno's "denort" runtime, which
// only Deno's download server has (no npm or Debian package carries it): with DENORT_BIN or a
// cached runtime, the compiled helper is built and goes through the same checks as the bundle
// (built_checks.ts); without, that test is ignored and its name says why. What can be checked
// anywhere is what `deno compile` stores in the executable: the full deno CLI as DENORT_BIN gives
// an executable that cannot run the helper (it starts a REPL) but carries the same metadata.
import assert from "node:assert/strict";
import { buildHelper, compileHelper, fallbackLine } from "../../scripts/lib/helper_build.ts";
import { run } from "../../scripts/lib/run.ts";
import {
  checkBuiltHelper,
  checkTlsTrust,
  compiledMetadata,
  isElf,
  launcherInfo,
  listTree,
} from "./lib/built_checks.ts";
import { ROOT } from "./lib/helper.ts";

/** Where `deno compile` would take denort from without network access, or null. */
function denortSource(): string | null {
  const bin = Deno.env.get("DENORT_BIN");
  if (bin) return `DENORT_BIN=${bin}`;
  const home = Deno.env.get("HOME") ?? "/root";
  const denoDir = Deno.env.get("DENO_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${home}/.cache`}/deno`;
  const zip = `${denoDir}/dl/release/v${Deno.version.deno}/denort-x86_64-unknown-linux-gnu.zip`;
  try {
    Deno.statSync(zip);
    return `cached runtime ${zip}`;
  } catch {
    return null;
  }
}

const runtime = denortSource();

Deno.test("compiled helper: deno compile bakes in its permissions, environment and no code cache", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_compile_" });
  try {
    const out = `${dir}/pam_mapi_helper`;
    const r = await compileHelper(ROOT, out, { DENORT_BIN: Deno.realPathSync(Deno.execPath()) });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await isElf(out));
    const meta = await compiledMetadata(out);
    // The launcher's environment, without DENO_DIR (a compiled executable does not use it).
    assert.deepEqual(meta.env_vars_from_env_file, {
      DENO_TLS_CA_STORE: "",
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    });
    // No V8 code cache (--no-code-cache): it would be read from $TMPDIR (/tmp) by a root
    // process, where any local user can create it first (issue 10: code-cache poisoning).
    assert.equal(meta.code_cache_key, null);
    // No certificate store chosen at build time: DENO_TLS_CA_STORE from the environment decides.
    assert.equal(meta.ca_stores, null);
    assert.equal(meta.ca_data, null);
    // Network, read and write for any target (the helper narrows them at run time), nothing else,
    // and no prompt.
    const p = meta.permissions as Record<string, unknown>;
    assert.deepEqual([p.allow_net, p.allow_read, p.allow_write], [[], [], []]);
    for (const name of ["allow_env", "allow_run", "allow_ffi", "allow_sys"]) {
      assert.equal(p[name], null, name);
    }
    assert.equal(p.prompt, false);
    assert.deepEqual(meta.argv, []);
    // The bundle's start-up V8 flags, less --no-lazy (which only pays with a code cache).
    assert.ok(JSON.stringify(meta.v8_flags).includes("--jitless"), JSON.stringify(meta.v8_flags));
    assert.ok(JSON.stringify(meta.v8_flags).includes("--single-threaded"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: runtime
    ? `compiled helper: the helper checks pass on the deno compile executable (${runtime})`
    : "compiled helper: SKIPPED, no denort runtime to compile with (set DENORT_BIN to the denort " +
      `binary of Deno ${Deno.version.deno}, or run "deno task compile" once with network access)`,
  ignore: runtime === null,
  async fn() {
    const dist = await Deno.makeTempDir({ prefix: "pam_mapi_dist_" });
    const tmpdir = `${dist}/tmp`;
    await Deno.mkdir(tmpdir);
    Deno.env.set("PAM_MAPI_HELPER_MODE", "compile");
    try {
      assert.equal(await buildHelper(ROOT, dist), "deno compile standalone executable");
      const helper = `${dist}/pam_mapi_helper`;
      assert.ok(await isElf(helper));
      assert.equal(await launcherInfo(helper), null, "a launcher, not the compiled helper");
      assert.ok(!(await listTree(dist)).includes("pam_mapi_helper.js"));
      await checkBuiltHelper(helper, { tmpdir });
      if (Deno.uid() === 0) await checkTlsTrust(helper);
      else console.log("compiled helper: TLS trust not checked (needs root)");
      assert.deepEqual(await listTree(tmpdir), []);
    } finally {
      Deno.env.delete("PAM_MAPI_HELPER_MODE");
      await Deno.remove(dist, { recursive: true });
    }
  },
});

Deno.test("deno task build without a compile runtime: one short line says why, once per dist/", async () => {
  const dist = await Deno.makeTempDir({ prefix: "pam_mapi_dist_" });
  try {
    // A build of this dist/ in a process of its own, as `deno task build` runs it; DENORT_BIN
    // naming nothing makes deno compile fail here whatever the network.
    const script = `${dist}/build.ts`;
    await Deno.writeTextFile(
      script,
      `import { buildHelper } from "${ROOT}/scripts/lib/helper_build.ts";\n` +
        `console.log(await buildHelper(${JSON.stringify(ROOT)}, ${JSON.stringify(dist)}));\n`,
    );
    const build = () =>
      run(Deno.execPath(), ["run", "-A", script], {
        env: { DENORT_BIN: `${dist}/no-such-denort`, PAM_MAPI_CACHE_DIR: `${dist}/cache` },
      });
    const first = await build();
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, "bundle started by deno\n");
    const lines = first.stderr.split("\n").filter((l) => l);
    assert.equal(lines.length, 1, first.stderr);
    assert.match(
      lines[0],
      /^build: no deno compile runtime \(No such file or directory \(os error 2\)\): the helper is the bundle, which behaves the same \(README\.md, Development\)$/,
    );
    // The next build of the same dist/ falls back for the same reason and says nothing.
    const second = await build();
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, "bundle started by deno\n");
    assert.equal(second.stderr, "");
  } finally {
    await Deno.remove(dist, { recursive: true });
  }
});

Deno.test("deno task build: the fallback line is short and names a proxy's remedy", () => {
  const url = "https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip";
  const dns = fallbackLine(
    `1: error sending request for url (${url}): client error (Connect): dns error: failed to ` +
      "lookup address information: Name or service not known",
  );
  assert.equal(
    dns,
    "build: no deno compile runtime (dl.deno.land: dns error): the helper is the bundle, which " +
      "behaves the same (README.md, Development)",
  );
  const proxy = fallbackLine(
    `1: error sending request for url (${url}): client error (Connect): invalid peer ` +
      "certificate: UnknownIssuer",
  );
  assert.match(
    proxy,
    /^build: no deno compile runtime \(dl\.deno\.land: invalid peer certificate\); /,
  );
  assert.match(proxy, /set NODE_EXTRA_CA_CERTS/);
});
