// The built helper (the bundle behind its #! line, as scripts/build.ts makes it) runs from any
// directory with an empty environment, answers --pam end to end, and writes nothing outside the
// cache directory it was built with.
import assert from "node:assert/strict";
import { buildHelper } from "../../scripts/lib/helper_build.ts";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { pamRequest, ROOT, runHelper } from "./lib/helper.ts";

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) {
      out.push(...(await listTree(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
    }
  }
  return out.sort();
}

Deno.test("built helper: env -i from another directory, --version, --pam, check", async () => {
  const dist = await Deno.makeTempDir({ prefix: "pam_mapi_dist_" });
  const cwd = await Deno.makeTempDir({ prefix: "pam_mapi_cwd_" });
  const cache = `${dist}/cache`;
  Deno.env.set("PAM_MAPI_HELPER_MODE", "bundle");
  Deno.env.set("PAM_MAPI_CACHE_DIR", cache);
  const sim = await startKopanoSim({
    listen: ["127.0.0.1:0"],
    unix: `${dist}/server.sock`,
    unixPeer: "admin", // the dangerous case: a root caller on the UNIX socket
    disabledFeatures: "imap mobile",
  });
  try {
    assert.equal(await buildHelper(ROOT, dist), "bundle started by deno");
    const helper = `${dist}/pam_mapi_helper`;
    const opts = { helper, clearEnv: true, env: {}, cwd };

    const v = await runHelper(["--version"], opts);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^pam_mapi_helper \d+\.\d+\.\d+\n/);

    const pam = async (password: string, args: string[]) => {
      const stdin = pamRequest({ user: "alice", password, args });
      const r = await runHelper(["--pam"], { ...opts, stdin });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      return JSON.parse(r.stdout).result;
    };
    for (const url of [sim.urls.http[0], sim.urls.unix[0]]) {
      assert.equal(await pam("secret", [`socket=${url}`, "service=pop3"]), "PAM_SUCCESS", url);
      assert.equal(await pam("secret", [`socket=${url}`, "service=imap"]), "PAM_AUTH_ERR", url);
      assert.equal(await pam("wrong", [`socket=${url}`]), "PAM_AUTH_ERR", url);
    }
    const check = await runHelper(["check", "alice", `socket=${sim.urls.http[0]}`], {
      ...opts,
      stdin: "secret\n",
    });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /result: PAM_SUCCESS \(exit 0\)/);

    // Nothing was written to the working directory; Deno's cache went where it was told.
    assert.deepEqual(await listTree(cwd), []);
    assert.ok((await listTree(cache)).length > 0);
    assert.equal(sim.openSessions(), 0);
  } finally {
    Deno.env.delete("PAM_MAPI_HELPER_MODE");
    Deno.env.delete("PAM_MAPI_CACHE_DIR");
    await sim.close();
    await Deno.remove(dist, { recursive: true });
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("built helper: the bundle stays small and loads check/help/TLS code only on demand", async () => {
  const dist = await Deno.makeTempDir({ prefix: "pam_mapi_dist_" });
  Deno.env.set("PAM_MAPI_HELPER_MODE", "bundle");
  try {
    await buildHelper(ROOT, dist);
    const text = await Deno.readTextFile(`${dist}/pam_mapi_helper`);
    assert.ok(text.length < 120_000, `bundle is ${text.length} bytes`);
    // No npm code in the helper: the XML reader is our own.
    assert.ok(!text.includes("fast-xml-parser"));
    for (const lazy of ["check", "help", "tls_ca"]) {
      assert.match(text, new RegExp(`\\(init_${lazy}\\(\\), ${lazy}_exports\\)`), lazy);
    }
  } finally {
    Deno.env.delete("PAM_MAPI_HELPER_MODE");
    await Deno.remove(dist, { recursive: true });
  }
});
