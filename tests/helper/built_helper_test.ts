// The built helper (the bundle behind its #! line, as scripts/build.ts makes it) runs from any
// directory with an empty environment, answers --pam end to end, and writes nothing outside the
// cache directory it was built with. compiled_helper_test.ts runs the same checks on the
// `deno compile` executable.
import assert from "node:assert/strict";
import { buildHelper } from "../../scripts/lib/helper_build.ts";
import { checkBuiltHelper } from "./lib/built_checks.ts";
import { ROOT } from "./lib/helper.ts";

Deno.test("built helper: env -i from another directory, --version, --pam, check", async () => {
  const dist = await Deno.makeTempDir({ prefix: "pam_mapi_dist_" });
  const cache = `${dist}/cache`;
  Deno.env.set("PAM_MAPI_HELPER_MODE", "bundle");
  Deno.env.set("PAM_MAPI_CACHE_DIR", cache);
  try {
    assert.equal(await buildHelper(ROOT, dist), "bundle started by deno");
    await checkBuiltHelper(`${dist}/pam_mapi_helper`, { cache });
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
    const text = await Deno.readTextFile(`${dist}/pam_mapi_helper`);
    assert.ok(text.length < 120_000, `bundle is ${text.length} bytes`);
    // No npm code in the helper: the XML reader is our own.
    assert.ok(!text.includes("fast-xml-parser"));
    for (const lazy of ["check", "help", "tls_ca", "serve", "status"]) {
      assert.match(text, new RegExp(`\\(init_${lazy}\\(\\), ${lazy}_exports\\)`), lazy);
    }
  } finally {
    Deno.env.delete("PAM_MAPI_HELPER_MODE");
    await Deno.remove(dist, { recursive: true });
  }
});
