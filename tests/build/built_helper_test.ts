// The built helper (the bundle started by its launcher, as scripts/build.ts makes them) runs from
// any directory with an empty environment, answers --pam end to end, and writes nothing outside
// the cache directory it was built with. compiled_helper_test.ts runs the same checks on the
// `deno compile` executable; tests/shim/code_cache_test.ts attacks the cache.
import assert from "node:assert/strict";
import { buildHelper } from "../../scripts/lib/helper_build.ts";
import { checkBuiltHelper, isElf, launcherInfo, listTree } from "../lib/built_checks.ts";
import { ROOT } from "../lib/helper.ts";

Deno.test("built helper: env -i from another directory, --version, --pam, check", async () => {
  const dist = await Deno.makeTempDir({ prefix: "pam_mapi_dist_" });
  const cache = `${dist}/cache`;
  Deno.env.set("PAM_MAPI_HELPER_MODE", "bundle");
  Deno.env.set("PAM_MAPI_CACHE_DIR", cache);
  try {
    assert.equal(await buildHelper(ROOT, dist), "bundle started by deno");
    const helper = `${dist}/pam_mapi_helper`;
    assert.ok(await isElf(helper), "the launcher");
    const info = await launcherInfo(helper);
    assert.deepEqual(info && [info.deno, info.bundle, info.pam_bundle, info.cache], [
      Deno.realPathSync(Deno.execPath()),
      `${dist}/pam_mapi_helper.js`,
      `${dist}/pam_mapi_helper_pam.js`,
      cache,
    ]);
    assert.equal(
      info?.env,
      "DENO_TLS_CA_STORE= DENO_DISABLE_NODE_SHIM=1 DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 PATH=/usr/bin:/bin",
    );
    // The bundles cannot be executed by themselves, past the launcher.
    for (const js of ["pam_mapi_helper.js", "pam_mapi_helper_pam.js"]) {
      assert.equal((await Deno.stat(`${dist}/${js}`)).mode! & 0o7777, 0o644, js);
    }
    await checkBuiltHelper(helper, { cache });
    // The launcher made the cache directory 0700, and Deno's files in it are root's alone.
    assert.equal((await Deno.stat(cache)).mode! & 0o7777, 0o700);
    for (const name of await listTree(cache)) {
      assert.equal((await Deno.lstat(`${cache}/${name}`)).mode! & 0o077, 0, name);
    }
  } finally {
    Deno.env.delete("PAM_MAPI_HELPER_MODE");
    Deno.env.delete("PAM_MAPI_CACHE_DIR");
    await Deno.remove(dist, { recursive: true });
  }
});

Deno.test("built helper: the bundle stays small and loads check/help/TLS/daemon code only on demand", async () => {
  const dist = await Deno.makeTempDir({ prefix: "pam_mapi_dist_" });
  Deno.env.set("PAM_MAPI_HELPER_MODE", "bundle");
  try {
    await buildHelper(ROOT, dist);
    const text = await Deno.readTextFile(`${dist}/pam_mapi_helper.js`);
    // Every command but --pam loads this one (forked logins load the smaller one below). Serve and
    // status with their checks of what a daemon reports, the HTTP reader's bounds, the daemon's
    // reply budget and the pool's watch (issue 18) made it about 136 000 bytes: a guard against
    // pulling in a library, not a target.
    assert.ok(text.length < 150_000, `bundle is ${text.length} bytes`);
    // No npm code in the helper: the XML reader is our own.
    assert.ok(!text.includes("fast-xml-parser"));
    for (const lazy of ["check", "help", "tls_ca", "serve", "status"]) {
      assert.match(text, new RegExp(`\\(init_${lazy}\\(\\), ${lazy}_exports\\)`), lazy);
    }
    // What every forked login loads: the module's request alone, no command of an administrator.
    const pam = await Deno.readTextFile(`${dist}/pam_mapi_helper_pam.js`);
    assert.ok(pam.length < 0.6 * text.length, `--pam bundle is ${pam.length} bytes`);
    for (
      const absent of [
        "src/cli/check.ts",
        "src/daemon/serve.ts",
        "src/cli/status.ts",
        "src/cli/help.ts",
      ]
    ) {
      assert.ok(!pam.includes(`// ${absent}`), absent);
    }
    assert.match(pam, /\(init_tls_ca\(\), tls_ca_exports\)/, "TLS code still only on demand");
  } finally {
    Deno.env.delete("PAM_MAPI_HELPER_MODE");
    await Deno.remove(dist, { recursive: true });
  }
});
