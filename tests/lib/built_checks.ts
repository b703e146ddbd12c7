// The checks every built helper must pass, whichever way it was built: the bundle started by its
// launcher (built_helper_test.ts, and dist/pam_mapi_helper in tls_trust_test.ts) and the `deno
// compile` executable (compiled_helper_test.ts). Each runs the helper as a process, the way the shim
// does.
import assert from "node:assert/strict";
import { startKopanoSim } from "../kopano_sim/mod.ts";
import { makeTestPki } from "./pki.ts";
import { pamRequest, runHelper } from "./helper.ts";
export { launcherInfo } from "../../scripts/lib/helper_build.ts";

export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.name);
    if (e.isDirectory) {
      out.push(...(await listTree(`${dir}/${e.name}`)).map((n) => `${e.name}/${n}`));
    }
  }
  return out.sort();
}

export interface BuiltHelperExpectations {
  /** The launcher's cache directory: V8's code cache must land there (and only there). */
  cache?: string;
  /** A directory given as TMPDIR that must stay empty (the compiled helper keeps no code cache). */
  tmpdir?: string;
}

/**
 * Runs `helper` from another directory with an empty environment: --version, --pam over TCP and
 * over a UNIX socket whose server would let a root caller in without a password, and check.
 */
export async function checkBuiltHelper(
  helper: string,
  expect: BuiltHelperExpectations = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_built_" });
  const cwd = `${dir}/cwd`;
  await Deno.mkdir(cwd);
  const sim = await startKopanoSim({
    listen: ["127.0.0.1:0"],
    unix: `${dir}/server.sock`,
    unixPeer: "admin", // the dangerous case: a root caller on the UNIX socket
    disabledFeatures: "imap mobile",
  });
  try {
    const env: Record<string, string> = expect.tmpdir ? { TMPDIR: expect.tmpdir } : {};
    const opts = { helper, clearEnv: true, env, cwd };

    const v = await runHelper(["--version"], opts);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^pam_mapi_helper \d+\.\d+\.\d+\n/);

    const pam = async (password: string, args: string[]) => {
      const stdin = pamRequest({ user: "alice", password, args });
      const r = await runHelper(["--pam"], { ...opts, stdin });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      const reply = JSON.parse(r.stdout);
      // The cache was trusted (the launcher said nothing), or there is none (compiled).
      assert.ok(!r.stdout.includes("code cache"), r.stdout);
      return reply.result;
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
    if (expect.cache) assert.ok((await listTree(expect.cache)).length > 0, "no code cache");
    if (expect.tmpdir) assert.deepEqual(await listTree(expect.tmpdir), [], "wrote to TMPDIR");
    assert.equal(sim.openSessions(), 0);
  } finally {
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** Runs the helper's check with `bundle` bind-mounted over the system CA bundle (root only). */
async function checkWithSystemBundle(helper: string, bundle: string, args: string[]) {
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
      helper,
      "check",
      "alice",
      ...args,
    ],
    { helper: "unshare", stdin: "secret\n", clearEnv: true, env: {} },
  );
}

/**
 * https:// trusts exactly cafile= when given, otherwise exactly the system bundle: Deno's own
 * roots are off (DENO_TLS_CA_STORE empty, set by the launcher or baked into the executable). The
 * system bundle is swapped for a test CA inside a private mount namespace, so this needs root.
 */
export async function checkTlsTrust(helper: string): Promise<void> {
  const pki = await makeTestPki();
  const sim = await startKopanoSim({
    listen: [],
    tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
  });
  try {
    const url = sim.urls.https[0].replace("127.0.0.1", "localhost");
    // System bundle = our CA: trusted without cafile=.
    let r = await checkWithSystemBundle(helper, pki.caFile, [`socket=${url}`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /TLS trust: system CA bundle \/etc\/ssl\/certs\/ca-certificates\.crt/);
    // cafile= names another CA: the system bundle (which would verify) is no longer trusted.
    r = await checkWithSystemBundle(helper, pki.caFile, [
      `socket=${url}`,
      `cafile=${pki.otherCaFile}`,
    ]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /UnknownIssuer/);
    // System bundle without our CA, no cafile=: refused.
    r = await checkWithSystemBundle(helper, pki.otherCaFile, [`socket=${url}`]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /UnknownIssuer/);
    assert.equal(sim.openSessions(), 0);
  } finally {
    await sim.close();
    await Deno.remove(pki.dir, { recursive: true });
  }
}

/**
 * The bundle's launcher starts Deno with an environment of its own, so the variables Deno itself
 * reads before any of the helper's code runs cannot reach it from the caller of `check`: an extra
 * trusted CA (NODE_EXTRA_CA_CERTS, DENO_CERT) does not make a server with the wrong certificate
 * pass, and no TLS key log (SSLKEYLOGFILE) is written.
 */
export async function checkCallerEnvIgnored(helper: string): Promise<void> {
  const pki = await makeTestPki();
  const sim = await startKopanoSim({
    listen: [],
    tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
  });
  const keylog = `${pki.dir}/keylog`;
  try {
    const url = sim.urls.https[0].replace("127.0.0.1", "localhost");
    const r = await runHelper(["check", "alice", `socket=${url}`, `cafile=${pki.otherCaFile}`], {
      helper,
      stdin: "secret\n",
      clearEnv: true,
      env: {
        PATH: "/usr/bin:/bin",
        NODE_EXTRA_CA_CERTS: pki.caFile,
        DENO_CERT: pki.caFile,
        SSLKEYLOGFILE: keylog,
      },
    });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /UnknownIssuer/);
    await assert.rejects(Deno.stat(keylog), Deno.errors.NotFound, "no TLS key log written");
    assert.equal(sim.openSessions(), 0);
  } finally {
    await sim.close();
    await Deno.remove(pki.dir, { recursive: true });
  }
}

/** True when `path` starts with the ELF magic (the launcher or a compiled helper). */
export async function isElf(path: string): Promise<boolean> {
  const f = await Deno.open(path);
  try {
    const head = new Uint8Array(4);
    const n = await f.read(head);
    return n === 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
  } finally {
    f.close();
  }
}

/**
 * The metadata `deno compile` appends to an executable (a JSON object starting `{"argv":`, near
 * the end of the file): where the baked-in permissions, env-file variables and code-cache key are.
 * An internal format of Deno (2.9); a change shows here first.
 */
export async function compiledMetadata(path: string): Promise<Record<string, unknown>> {
  const info = await Deno.stat(path);
  const f = await Deno.open(path);
  let text: string;
  try {
    const size = Math.min(info.size, 8 * 1024 * 1024);
    await f.seek(info.size - size, Deno.SeekMode.Start);
    const buf = new Uint8Array(size);
    let off = 0;
    while (off < size) {
      const n = await f.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    text = new TextDecoder("latin1").decode(buf.subarray(0, off));
  } finally {
    f.close();
  }
  const start = text.lastIndexOf('{"argv":');
  assert.ok(start >= 0, `${path}: no deno compile metadata found`);
  // The JSON object ends where its braces balance (outside strings).
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return JSON.parse(text.slice(start, i + 1));
  }
  throw new Error(`${path}: the deno compile metadata does not end`);
}
