// The built helper trusts exactly one set of CA certificates for https://: cafile= when given,
// otherwise the system bundle. Deno's own bundled roots are switched off (DENO_TLS_CA_STORE empty:
// set by the bundle's launcher, or baked into a compiled helper), so cafile= narrows trust to the
// administrator's CA instead of adding it to a public set. The system bundle is swapped for a test
// CA inside a private mount namespace (root only), so the machine's real bundle is never touched.
import assert from "node:assert/strict";
import {
  checkCallerEnvIgnored,
  checkTlsTrust,
  compiledMetadata,
  isElf,
  launcherInfo,
} from "../lib/built_checks.ts";
import { ROOT } from "../lib/helper.ts";

const HELPER = `${ROOT}/dist/pam_mapi_helper`;
const isRoot = Deno.uid() === 0;

Deno.test({
  name: isRoot
    ? "built helper: https trusts cafile= only, or else the system bundle only"
    : "built helper: https trust anchors: SKIPPED, needs root",
  ignore: !isRoot,
  async fn() {
    const launcher = await launcherInfo(HELPER);
    if (launcher) {
      // The launcher sets the exact-trust switch (an empty value, not "mozilla" or "system").
      assert.match(launcher.env, /(^| )DENO_TLS_CA_STORE=( |$)/);
    } else {
      assert.ok(await isElf(HELPER));
      const meta = await compiledMetadata(HELPER);
      assert.deepEqual(meta.env_vars_from_env_file, {
        DENO_TLS_CA_STORE: "",
        DENO_NO_UPDATE_CHECK: "1",
        NO_COLOR: "1",
      });
    }
    await checkTlsTrust(HELPER);
  },
});

Deno.test({
  name:
    "built helper (launcher): the caller's NODE_EXTRA_CA_CERTS, DENO_CERT, SSLKEYLOGFILE never reach Deno",
  // A deno compile helper reads them (its runtime starts before any of our code): pam_mapi_helper(8)
  // says to run `check` with env -i there. The module passes only PATH either way.
  ignore: !isRoot,
  async fn() {
    if (!(await launcherInfo(HELPER))) return;
    await checkCallerEnvIgnored(HELPER);
  },
});
