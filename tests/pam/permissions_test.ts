// The helper gives up what its configuration does not need, right after parsing the arguments.
import assert from "node:assert/strict";
import { DENO_FLAGS, ROOT } from "../lib/helper.ts";
import { makeTestPki } from "../lib/pki.ts";

async function probe(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...DENO_FLAGS, `${ROOT}/tests/lib/perm_probe.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("plain http: network only; no file may be read or written", async () => {
  const r = await probe(["socket=http://127.0.0.1:236/kopano"]);
  assert.deepEqual(r.before, { net: "granted", read: "granted", write: "granted" });
  assert.deepEqual(r.after, {
    net: "granted",
    read: "prompt",
    write: "prompt",
    env: "prompt",
    run: "prompt",
    sys: "prompt",
    ffi: "prompt",
  });
});

Deno.test("https: the CA bundle is read first, then read access is dropped too", async () => {
  const pki = await makeTestPki();
  try {
    const r = await probe(["socket=https://localhost:237/kopano", `cafile=${pki.caFile}`]);
    assert.equal(r.ca, 1);
    assert.equal(r.caSource, `cafile ${pki.caFile}`);
    assert.equal(r.after.net, "granted");
    assert.equal(r.after.read, "prompt");
    assert.equal(r.after.write, "prompt");
    const sys = await probe(["socket=https://localhost:237/kopano"]);
    assert.match(sys.caSource, /system CA bundle|built-in/);
    assert.equal(sys.after.read, "prompt");
  } finally {
    await Deno.remove(pki.dir, { recursive: true });
  }
});

Deno.test("file:// only: Deno needs read, write and net (unix:PATH) to connect; nothing else", async () => {
  const r = await probe(["socket=file:///run/kopano/server.sock"]);
  assert.equal(r.after.read, "granted");
  assert.equal(r.after.write, "granted");
  assert.equal(r.after.net, "granted");
  assert.equal(r.after.env, "prompt");
});
