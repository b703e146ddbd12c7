// The built helper, forked (--pam) and resident (serve), against the Kopano-compatible server
// started as each generation of the captures (11.0.2 and 8.7.85; tests/sim/fidelity*_test.ts show
// it answers as they did), with the captured servers' users and disabled_features, over TCP, TLS
// and the UNIX socket. The UNIX clients are root (an admin peer), as saslauthd is: both
// generations let root in without a password when a logon asks for it (ulFlags 0 and an empty
// szImpersonateUser), so a wrong password refused there shows the helper never asks for it.
// Both modes give the same reply, byte for byte, and every session is logged off.
import assert from "node:assert/strict";
import { CAPTURED_USERS, type KopanoSim, startKopanoSim } from "../kopano_sim/mod.ts";
import { GENERATIONS } from "../lib/captures.ts";
import { makeTestPki, type TestPki } from "../lib/pki.ts";
import { HELPER, login, startDaemon } from "../daemon/lib.ts";
import { type PamRequestFields, runPam } from "../lib/helper.ts";

const CASES: [user: string, password: string, result: string][] = [
  ["alice", "secret", "PAM_SUCCESS"],
  ["alice", "wrongpass", "PAM_AUTH_ERR"],
  ["nosuchuser", "secret", "PAM_AUTH_ERR"],
  ["carol", `p&<ss>"'w]]>rd`, "PAM_SUCCESS"],
  ["carol", "p&amp;&lt;ss&gt;\"'w]]&gt;rd", "PAM_AUTH_ERR"], // the escaped spelling is not hers
  ["dave", "pässwörd€ ok", "PAM_SUCCESS"],
  ["dave", "passwörd€ ok", "PAM_AUTH_ERR"],
  ["erin@example.com", "erinpass", "PAM_SUCCESS"],
  ["erin", "erinpass", "PAM_AUTH_ERR"],
];
/** [user, service=, result]: alice has pop3, not imap; bob imap, not pop3 (disabled_features). */
const FEATURES: [string, string, string, string][] = [
  ["alice", "secret", "service=pop3", "PAM_SUCCESS"],
  ["alice", "secret", "service=imap", "PAM_AUTH_ERR"],
  ["bob", "bobpass", "service=imap", "PAM_SUCCESS"],
  ["bob", "bobpass", "service=pop3|mobile", "PAM_AUTH_ERR"],
];

async function recordedServer(version: string, dir: string, pki: TestPki): Promise<KopanoSim> {
  return await startKopanoSim({
    version,
    users: CAPTURED_USERS,
    disabledFeatures: "imap mobile",
    listen: ["127.0.0.1:0"],
    tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
    unix: `${dir}/server.sock`,
    unixPeer: "admin",
  });
}

for (const version of GENERATIONS) {
  Deno.test(`the helper, forked and resident, against the sim as Kopano ${version}: the same answers over TCP, TLS and UNIX (root)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "pam_mapi_gen_" });
    const pki = await makeTestPki();
    const sim = await recordedServer(version, dir, pki);
    const daemon = await startDaemon();
    try {
      const sockets = {
        tcp: [`socket=${sim.urls.http[0]}`],
        tls: [`socket=${sim.urls.https[0]}`, `cafile=${pki.caFile}`],
        unix: [`socket=${sim.urls.unix[0]}`],
      };
      const both = async (f: PamRequestFields, what: string) => {
        const forked = await runPam(f, { helper: HELPER, clearEnv: true, env: {} });
        assert.equal(forked.code, 0, forked.stderr);
        const resident = await login(daemon.socket, f);
        assert.deepEqual(resident, forked.reply, `${what}: the resident helper differs`);
        assert.ok(!forked.stdout.includes(f.password as string), "never the password");
        return forked.reply.result;
      };
      for (const [transport, args] of Object.entries(sockets)) {
        for (const [user, password, result] of CASES) {
          const what = `${version} ${transport} ${user}/${password}`;
          const req = { user, password, args: [...args, "timeout=5"], rhost: "192.0.2.7" };
          assert.equal(await both(req, what), result, what);
        }
      }
      for (const [user, password, service, result] of FEATURES) {
        const what = `${version} ${user} ${service}`;
        const req = { user, password, args: [...sockets.tcp, service, "timeout=5"] };
        assert.equal(await both(req, what), result, what);
      }
      assert.equal(sim.openSessions(), 0, "every session logged off");
      // Every logon asked for the password to be checked, so none went in by the peer's uid.
      const logons = sim.requests.filter((r) => r.method === "logon");
      assert.equal(logons.length, 2 * (3 * CASES.length + FEATURES.length));
      assert.deepEqual(new Set(logons.map((r) => r.params.ulFlags)), new Set(["1"]));
    } finally {
      await daemon.stop();
      await sim.close();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(pki.dir, { recursive: true });
    }
  });
}
