// The helper as a `deno compile` executable. Building one needs Deno's "denort" runtime, which
// only Deno's download server has (no npm or Debian package carries it): with DENORT_BIN or a
// cached runtime, the compiled helper is built and goes through the same checks as the bundle
// (built_checks.ts); without, that test is ignored and its name says why. What can be checked
// anywhere is what `deno compile` stores in the executable: the full deno CLI as DENORT_BIN gives
// an executable that cannot run the helper (it starts a REPL) but carries the same metadata.
import assert from "node:assert/strict";
import { buildHelper, compileHelper } from "../../scripts/lib/helper_build.ts";
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
