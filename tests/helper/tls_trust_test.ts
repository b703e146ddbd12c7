// The built helper trusts exactly one set of CA certificates for https://: cafile= when given,
// otherwise the system bundle. Deno's own bundled roots are switched off by the #! line
// (DENO_TLS_CA_STORE empty), so cafile= narrows trust to the administrator's CA instead of adding
// it to a public set. The system bundle is swapped for a test CA inside a private mount namespace
// (root only), so the machine's real bundle is never touched.
import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { makeTestPki } from "../lib/pki.ts";
import { ROOT, runHelper } from "./lib/helper.ts";

const HELPER = `${ROOT}/dist/pam_mapi_helper`;
const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const isRoot = Deno.uid() === 0;

/** Runs the built helper's check with `bundle` bind-mounted over the system CA bundle. */
async function checkWithSystemBundle(bundle: string, args: string[]) {
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return await runHelper(
    [
      "--mount", // a private mount namespace: the bind mount below never reaches the machine
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      bundle,
      SYSTEM_BUNDLE,
      HELPER,
      "check",
      "alice",
      ...args,
    ],
    { helper: "unshare", stdin: "secret\n", clearEnv: true, env: {} },
  );
}

Deno.test({
  name: "built helper: https trusts cafile= only, or else the system bundle only",
  ignore: !isRoot,
  async fn() {
    const shebang = (await Deno.readTextFile(HELPER)).split("\n")[0];
    // The exact-trust switch is in the #! line (an empty value, not "mozilla" or "system").
    assert.match(shebang, / DENO_TLS_CA_STORE= /);
    const pki = await makeTestPki();
    const sim = await startKopanoSim({
      listen: [],
      tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
    });
    try {
      const url = sim.urls.https[0].replace("127.0.0.1", "localhost");
      // System bundle = our CA: trusted without cafile=.
      let r = await checkWithSystemBundle(pki.caFile, [`socket=${url}`]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /TLS trust: system CA bundle \/etc\/ssl\/certs\/ca-certificates\.crt/);
      // cafile= names another CA: the system bundle (which would verify) is no longer trusted.
      r = await checkWithSystemBundle(pki.caFile, [`socket=${url}`, `cafile=${pki.otherCaFile}`]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout, /UnknownIssuer/);
      // System bundle without our CA, no cafile=: refused.
      r = await checkWithSystemBundle(pki.otherCaFile, [`socket=${url}`]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout, /UnknownIssuer/);
      assert.equal(sim.openSessions(), 0);
    } finally {
      await sim.close();
      await Deno.remove(pki.dir, { recursive: true });
    }
  },
});
