// Module arguments: the shared vectors (tests/protocol/args-cases.json, `helper` column) and the
// parsed values the rest of the helper relies on.
import assert from "node:assert/strict";
import { ArgError, parseModuleArgs, parseSocket } from "../../src/pam/args.ts";
import { ROOT } from "../lib/helper.ts";

const vectors = JSON.parse(await Deno.readTextFile(`${ROOT}/tests/protocol/args-cases.json`));

Deno.test("args-cases.json: every helper verdict matches", () => {
  assert.ok(vectors.cases.length >= 40);
  for (const c of vectors.cases) {
    let verdict = "ok";
    let message = "";
    try {
      parseModuleArgs(c.args);
    } catch (e) {
      assert.ok(e instanceof ArgError, `${c.why}: unexpected ${e}`);
      verdict = "error";
      message = e.message;
    }
    assert.equal(verdict, c.helper, `${JSON.stringify(c.args)} (${c.why}) ${message}`);
  }
});

Deno.test("defaults: one http socket on localhost:236, timeout 10, no features", () => {
  const cfg = parseModuleArgs([]);
  assert.equal(cfg.sockets.length, 1);
  assert.deepEqual(
    { ...cfg.sockets[0] },
    {
      url: "http://localhost:236/kopano",
      kind: "http",
      host: "localhost",
      port: 236,
      path: "/kopano",
      hostHeader: "localhost:236",
      socketPath: "",
    },
  );
  assert.equal(cfg.timeout, 10);
  assert.equal(cfg.services, null);
  assert.equal(cfg.quiet || cfg.debug || cfg.ignoreAuthinfoUnavail, false);
});

Deno.test("service= is lower-cased, deduplicated and keeps order", () => {
  assert.deepEqual(parseModuleArgs(["service=POP3|imap|Pop3"]).services, ["pop3", "imap"]);
});

Deno.test("service= compares ASCII only: a Unicode look-alike is not a feature", () => {
  // U+0130 (capital I with dot) lower-cases to "i̇" under Unicode rules; Kopano compares ASCII.
  assert.throws(() => parseModuleArgs(["service=\u0130MAP"]), ArgError);
});

Deno.test("socket URLs: ports, IPv6, file paths, and characters that could split a request", () => {
  assert.equal(parseSocket("https://kopano.example.com/").port, 443);
  assert.equal(parseSocket("http://kopano.example.com").path, "/");
  const v6 = parseSocket("http://[::1]:236/kopano");
  assert.equal(v6.host, "::1");
  assert.equal(v6.hostHeader, "[::1]:236");
  const unix = parseSocket("file:///var/run/kopano/server.sock");
  assert.equal(unix.kind, "unix");
  assert.equal(unix.socketPath, "/var/run/kopano/server.sock");
  for (
    const bad of [
      "http://h/a b",
      "http://h/a\r\nX-Injected: 1",
      "http://h/#frag",
      'http://h/"',
      "http://h:0/",
      "http://h:/",
      "http://-h/",
      "http://[zz]/",
      "file:///run/",
      "file:///" + "x".repeat(120),
      "file:///run/a\nb",
      "HTTP://h/",
    ]
  ) {
    assert.throws(() => parseSocket(bad), ArgError, bad);
  }
});

Deno.test("error messages name the argument and make control characters visible", () => {
  assert.throws(() => parseModuleArgs(["bogus\x1b[31m"]), /unknown module argument "bogus\?\[31m"/);
  assert.throws(() => parseModuleArgs(["timeout=05"]), /timeout="05": must be a whole number/);
  assert.throws(() => parseModuleArgs(["cafile=/etc/ca.pem"]), /no socket= uses https/);
});

Deno.test("socket= may be repeated up to 8 times, in order", () => {
  const args = Array.from({ length: 8 }, (_, i) => `socket=http://h${i}:236/`);
  assert.deepEqual(parseModuleArgs(args).sockets.map((s) => s.host), [
    "h0",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "h7",
  ]);
});

Deno.test("daemon= is the shim's: checked (absolute or off, once), kept, used for nothing else", () => {
  assert.equal(parseModuleArgs([]).daemon, null);
  assert.equal(parseModuleArgs(["daemon=off"]).daemon, "off");
  const cfg = parseModuleArgs(["daemon=/run/pam_mapi/helper.sock"]);
  assert.equal(cfg.daemon, "/run/pam_mapi/helper.sock");
  assert.deepEqual(cfg.sockets.map((s) => s.url), ["http://localhost:236/kopano"]);
  assert.throws(
    () => parseModuleArgs(["daemon=/run/a\nb"]),
    /daemon="\/run\/a\?b": must be an absolute path/,
  );
  assert.throws(() => parseModuleArgs(["daemon=Off"]), /daemon="Off": must be an absolute path/);
  assert.throws(() => parseModuleArgs(["daemon=/a", "daemon=off"]), /daemon= given more than once/);
});
