// https:// sockets: the certificate and the host name are always verified (cafile= or the system
// store), a TLS failure is "no answer", and no client certificate is ever offered.
import assert from "node:assert/strict";
import { makeTestPki, TestPki } from "../lib/pki.ts";
import { captureDir } from "../lib/captures.ts";
import { startFixtureServer } from "../lib/fixture_server.ts";
import { runHelper, runPam } from "../lib/helper.ts";

let pki: TestPki;

async function withTls(cert: "good" | "wrong-name", fn: (url: string) => Promise<void>) {
  pki ??= await makeTestPki();
  const server = await startFixtureServer({}, {
    transport: "tls",
    cert: await Deno.readTextFile(cert === "good" ? pki.certFile : pki.wrongNameCertFile),
    key: await Deno.readTextFile(cert === "good" ? pki.keyFile : pki.wrongNameKeyFile),
  });
  try {
    await fn(server.url);
    assert.equal(server.openSessions(), 0);
  } finally {
    await server.close();
  }
}

Deno.test("https with cafile=: verified, logon accepted; the IP address in the SAN works too", async () => {
  await withTls("good", async (url) => {
    const r = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${url}`, `cafile=${pki.caFile}`, "debug"],
    });
    assert.equal(r.reply.result, "PAM_SUCCESS", JSON.stringify(r.reply));
    assert.ok(
      r.reply.log.some((l) =>
        l.message.endsWith("tls: TLS established, certificate verified for localhost")
      ),
    );
    const ip = url.replace("localhost", "127.0.0.1");
    const r2 = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${ip}`, `cafile=${pki.caFile}`],
    });
    assert.equal(r2.reply.result, "PAM_SUCCESS");
    const c = await runHelper(["check", "alice", `socket=${url}`, `cafile=${pki.caFile}`], {
      stdin: "pw\n",
    });
    assert.equal(c.code, 0);
    assert.ok(c.stdout.includes(`  TLS trust: cafile ${pki.caFile}\n`));
    assert.match(c.stdout, / ok {3}tls {6}TLS established, certificate verified for localhost\n/);
  });
});

Deno.test("https: an unknown issuer or a wrong host name is a TLS failure -> PAM_AUTHINFO_UNAVAIL", async () => {
  await withTls("good", async (url) => {
    for (const args of [[`cafile=${pki.otherCaFile}`], []]) {
      const r = await runPam({ user: "alice", password: "pw", args: [`socket=${url}`, ...args] });
      assert.equal(r.reply.result, "PAM_AUTHINFO_UNAVAIL", args.join(" "));
      assert.match(r.reply.log[0].message, /TLS failure: .*UnknownIssuer/);
    }
  });
  await withTls("wrong-name", async (url) => {
    const r = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${url}`, `cafile=${pki.caFile}`],
    });
    assert.equal(r.reply.result, "PAM_AUTHINFO_UNAVAIL");
    assert.match(r.reply.log[0].message, /TLS failure: .*certificate not valid for name/);
  });
});

Deno.test("https: no client certificate is offered to a server that asks for one", async () => {
  pki ??= await makeTestPki();
  // Deno.listenTls cannot request client certificates; Node's tls server can.
  const script = `
    const tls = require("tls"), fs = require("fs");
    const body = fs.readFileSync(process.argv[3], "utf8");
    const srv = tls.createServer({ cert: fs.readFileSync(process.argv[1]), key: fs.readFileSync(process.argv[2]),
      requestCert: true, rejectUnauthorized: false, ca: [fs.readFileSync(process.argv[1])] }, (s) => {
      const peer = s.getPeerCertificate();
      console.log("peer-cert:" + (peer && Object.keys(peer).length ? "present" : "none"));
      s.on("data", () => s.end("HTTP/1.1 200 OK\\r\\nContent-Length: " + Buffer.byteLength(body) + "\\r\\nConnection: close\\r\\n\\r\\n" + body));
    });
    srv.listen(0, "127.0.0.1", () => console.log("port:" + srv.address().port));
    setTimeout(() => srv.close(), 5000).unref();
  `;
  const body = captureDir("11.0.2") + "a2_logon_alice_wrong_password.response.body";
  const node = new Deno.Command("node", {
    args: ["-e", script, pki.certFile, pki.keyFile, body],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = node.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const readUntil = async (re: RegExp) => {
    while (!re.test(seen)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`node server ended: ${seen}`);
      seen += value;
    }
  };
  await readUntil(/port:\d+/);
  const port = /port:(\d+)/.exec(seen)![1];
  try {
    const r = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=https://localhost:${port}/kopano`, `cafile=${pki.caFile}`],
    });
    assert.equal(r.reply.result, "PAM_AUTH_ERR", JSON.stringify(r.reply));
    await readUntil(/peer-cert:/);
    assert.match(seen, /peer-cert:none/);
  } finally {
    node.kill();
    await reader.cancel();
    await node.status;
  }
});

Deno.test({
  name: "tls: remove the test PKI",
  fn: async () => {
    if (pki) await Deno.remove(pki.dir, { recursive: true });
  },
});
