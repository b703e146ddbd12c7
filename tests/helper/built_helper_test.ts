// The built helper (the bundle behind its #! line, as scripts/build.ts makes it) runs from any
// directory with an empty environment, answers --pam end to end, and writes nothing outside the
// cache directory it was built with.
import assert from "node:assert/strict";
import { buildHelper } from "../../scripts/lib/helper_build.ts";
import { startFixtureServer } from "./lib/fixture_server.ts";
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
  const server = await startFixtureServer({});
  const unix = await startFixtureServer({}, { transport: "unix" });
  try {
    assert.equal(await buildHelper(ROOT, dist), "bundle started by deno");
    const helper = `${dist}/pam_mapi_helper`;
    const opts = { helper, clearEnv: true, env: {}, cwd };

    const v = await runHelper(["--version"], opts);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^pam_mapi_helper \d+\.\d+\.\d+\n/);

    for (const url of [server.url, unix.url]) {
      const ok = await runHelper(["--pam"], {
        ...opts,
        stdin: pamRequest({
          user: "alice",
          password: "secret",
          args: [`socket=${url}`, "service=pop3"],
        }),
      });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stderr, "");
      assert.equal(JSON.parse(ok.stdout).result, "PAM_SUCCESS", ok.stdout);
    }
    const refused = await runHelper(["--pam"], {
      ...opts,
      stdin: pamRequest({
        user: "alice",
        password: "secret",
        args: [`socket=${server.url}`, "service=imap"],
      }),
    });
    assert.equal(JSON.parse(refused.stdout).result, "PAM_AUTH_ERR");

    const check = await runHelper(["check", "alice", `socket=${server.url}`], {
      ...opts,
      stdin: "secret\n",
    });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /result: PAM_SUCCESS \(exit 0\)/);

    // Nothing was written to the working directory; Deno's cache went where it was told.
    assert.deepEqual(await listTree(cwd), []);
    assert.ok((await listTree(cache)).length > 0);
    assert.equal(server.openSessions() + unix.openSessions(), 0);
  } finally {
    Deno.env.delete("PAM_MAPI_HELPER_MODE");
    Deno.env.delete("PAM_MAPI_CACHE_DIR");
    await server.close();
    await unix.close();
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
