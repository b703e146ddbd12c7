// Acceptance: the helper process against the Kopano-compatible server (tests/kopano_sim) over
// TCP, TLS and the UNIX socket: logon semantics, features, the request as sent, the peer-credential
// bypass and the file:// guard, check exit codes, failover, faults, and every session logged off.
import assert from "node:assert/strict";
import { DEFAULT_USERS, KopanoSim, KopanoSimOptions, startKopanoSim } from "../kopano_sim/mod.ts";
import { makeTestPki, TestPki } from "../lib/pki.ts";
import { PamRun, runHelper, runPam } from "../lib/helper.ts";

const SPECIAL = {
  markup: `a&b<c>d"e'f &amp; ]]> <!--`,
  unicode: "pässwörd-€-😀-日本",
  long: "Ω".repeat(255) + "xy", // 512 bytes of UTF-8
  whitespace: "tab\there\nnewline\rreturn \r\n end ",
};
const USERS = [
  ...DEFAULT_USERS,
  { name: "markup", password: SPECIAL.markup },
  { name: "jürgen@example.com", password: SPECIAL.unicode },
  { name: "long", password: SPECIAL.long },
  { name: "ws", password: SPECIAL.whitespace },
  // An override spelled differently from disabled_features: the server lists "IMAP" as enabled
  // and "imap" as disabled.
  { name: "carol", password: "carolpw", enabled: ["IMAP"] },
];
/** [user, password, variants that must be refused]: the escaped, decoded or normalised spellings. */
const VARIANTS: [string, string, string[]][] = [
  ["v-lt", "<", ["&lt;", "&#60;", "&amp;lt;"]],
  ["v-amp", "&", ["&amp;", "&#38;", "&&"]],
  ["v-cdata", "]]>", ["]]&gt;", "]]", "<![CDATA[]]]]><![CDATA[>]]>"]],
  ["v-quotes", `"'`, ["&quot;&apos;", '"', "'", "''"]],
  ["v-cr", "a\rb", ["a\nb", "a\r\nb", "a&#13;b", "ab", "a b"]],
  ["v-tab", "a\tb", ["a b", "a&#9;b", "ab"]],
  ["v-emoji", "pw😀", ["pw&#128512;", "pw&#x1F600;", "pw", "pw\u{1F601}"]],
  ["v-combining", "e\u0301", ["\u00e9", "e", "e\u0301\u0301"]], // NFD; NFC refused
  ["v-precomposed", "\u00e9", ["e\u0301"]],
  ["v-entity", "&amp;", ["&", "&amp;amp;", "&#38;"]],
  ["v-charref", "&#60;", ["<", "&#38;#60;", "&lt;"]],
  ["v-spaces", " pw ", ["pw", " pw", "pw "]],
  ["v-bom", "\ufeffpw", ["pw", "\ufeff\ufeffpw", "\u200bpw"]],
];
USERS.push(...VARIANTS.map(([name, password]) => ({ name, password })));

let pki: TestPki | undefined;
const dirs: string[] = [];

async function sim(
  opts: KopanoSimOptions = {},
): Promise<KopanoSim & { tcp: string; tls: string; unix: string }> {
  pki ??= await makeTestPki();
  const dir = await Deno.makeTempDir({ prefix: "pam_mapi_sim_" });
  dirs.push(dir);
  const s = await startKopanoSim({
    listen: ["127.0.0.1:0"],
    unix: `${dir}/server.sock`,
    tls: { listen: "127.0.0.1:0", certFile: pki.certFile, keyFile: pki.keyFile },
    users: USERS,
    disabledFeatures: "imap mobile", // as on the server the fixtures were recorded from
    unixPeer: "user",
    ...opts,
  });
  return Object.assign(s, { tcp: s.urls.http[0], tls: s.urls.https[0], unix: s.urls.unix[0] });
}

type Sim = Awaited<ReturnType<typeof sim>>;
const TRANSPORTS = ["tcp", "tls", "unix"] as const;

function socketArgs(s: Sim, t: typeof TRANSPORTS[number]): string[] {
  return t === "tls" ? [`socket=${s.tls}`, `cafile=${pki!.caFile}`] : [`socket=${s[t]}`];
}

async function pam(user: string, password: string, args: string[]): Promise<PamRun> {
  const r = await runPam({ user, password, args: [...args, "timeout=3"], rhost: "198.51.100.4" });
  assert.equal(r.code, 0, r.stderr);
  // (A password of one or two characters such as `"` appears in any reply.)
  if (password.length > 3) assert.ok(!r.stdout.includes(password), "the password is in the reply");
  return r;
}

Deno.test("sim, TCP/TLS/UNIX: right password, wrong password, unknown user; all sessions logged off", async () => {
  const s = await sim();
  try {
    for (const t of TRANSPORTS) {
      const ok = await pam("alice", "secret", socketArgs(s, t));
      assert.equal(ok.reply.result, "PAM_SUCCESS", `${t}: ${JSON.stringify(ok.reply)}`);
      assert.equal(ok.reply.log[0].priority, "info");
      assert.equal((await pam("alice", "wrong", socketArgs(s, t))).reply.result, "PAM_AUTH_ERR", t);
      assert.equal(
        (await pam("nobody", "secret", socketArgs(s, t))).reply.result,
        "PAM_AUTH_ERR",
        t,
      );
      assert.equal((await pam("SYSTEM", "x", socketArgs(s, t))).reply.result, "PAM_AUTH_ERR", t);
    }
    assert.equal(s.openSessions(), 0);
    const logons = s.requests.filter((r) => r.method === "logon");
    assert.equal(logons.length, 12);
    assert.deepEqual(new Set(logons.map((r) => r.transport)), new Set(["tcp", "tls", "unix"]));
  } finally {
    await s.close();
  }
});

Deno.test("sim: the logon request carries ulFlags 1, capabilities 528, no szImpersonateUser", async () => {
  const s = await sim();
  try {
    await pam("alice", "secret", [`socket=${s.tcp}`, "service=pop3"]);
    const [logon, getUser, logoff] = s.requests;
    assert.equal(logon.method, "logon");
    assert.equal(logon.params.ulFlags, "1");
    assert.equal(logon.params.ulCapabilities, "528");
    assert.ok(!logon.elements.includes("szImpersonateUser"), logon.elements.join(","));
    assert.equal(logon.params.szClientApp, "pam_mapi");
    assert.equal(logon.params.szClientAppMisc, "smtp");
    assert.match(logon.params.szVersion, /^(\d+)\.\d+\.\d+$/);
    assert.ok(Number(logon.params.szVersion.split(".")[0]) >= 6);
    assert.equal(logon.httpMethod, "POST");
    assert.equal(logon.headers["accept-encoding"], undefined);
    assert.equal(getUser.method, "getUser");
    assert.equal(getUser.params.ulUserId, "0");
    assert.equal(getUser.params.sUserId, "");
    assert.equal(logoff.method, "logoff");
    // One connection for the whole attempt.
    assert.equal(new Set([logon, getUser, logoff].map((r) => r.connection)).size, 1);
  } finally {
    await s.close();
  }
});

Deno.test("sim: markup, quotes, non-ASCII, whitespace and 512-byte passwords arrive byte for byte", async () => {
  const s = await sim();
  try {
    for (const t of TRANSPORTS) {
      for (const [user, password] of USERS.slice(3).map((u) => [u.name, u.password] as const)) {
        s.clearRequests();
        const r = await pam(user, password, socketArgs(s, t));
        assert.equal(r.reply.result, "PAM_SUCCESS", `${t} ${user}: ${JSON.stringify(r.reply)}`);
        assert.equal(s.requests[0].params.szUsername, user);
        assert.equal(s.requests[0].params.szPassword, password);
        // One byte off is a refusal: the comparison is exact.
        const off = await pam(user, password.slice(0, -1), socketArgs(s, t));
        assert.equal(off.reply.result, "PAM_AUTH_ERR");
      }
    }
    assert.equal(new TextEncoder().encode(SPECIAL.long).length, 512);
    assert.equal(s.openSessions(), 0);
  } finally {
    await s.close();
  }
});

Deno.test("sim: XML-special and non-ASCII passwords are accepted exactly, every other spelling refused", async () => {
  const s = await sim();
  try {
    const got: string[] = [];
    const want: string[] = [];
    for (const [user, password, variants] of VARIANTS) {
      s.clearRequests();
      const r = await pam(user, password, [`socket=${s.tcp}`]);
      // What the server decoded is the password as given, not an escaped or decoded form of it.
      const decoded = s.requests[0].params.szPassword === password ? "as sent" : "changed";
      got.push(`${user} ${JSON.stringify(password)}: ${r.reply.result}, ${decoded}`);
      want.push(`${user} ${JSON.stringify(password)}: PAM_SUCCESS, as sent`);
      for (const v of variants) {
        assert.notEqual(v, password);
        const off = await pam(user, v, [`socket=${s.tcp}`]);
        got.push(`${user} ${JSON.stringify(v)}: ${off.reply.result}`);
        want.push(`${user} ${JSON.stringify(v)}: PAM_AUTH_ERR`);
      }
    }
    assert.deepEqual(got, want);
    // check reads the password from stdin the same way: a leading U+FEFF is part of it.
    const check = (pw: string) =>
      runHelper(["check", "v-bom", `socket=${s.tcp}`], { stdin: pw + "\n" });
    assert.equal((await check("\ufeffpw")).code, 0);
    assert.equal((await check("pw")).code, 1);
    assert.equal(s.openSessions(), 0);
  } finally {
    await s.close();
  }
});

Deno.test("sim: service= OR semantics, case-insensitive; a feature disabled by the defaults refuses", async () => {
  const s = await sim();
  try {
    const cases: [string, string, string][] = [
      ["alice", "service=pop3", "PAM_SUCCESS"],
      ["alice", "service=imap", "PAM_AUTH_ERR"], // alice's only listed feature: off by default
      ["alice", "service=mobile", "PAM_AUTH_ERR"],
      ["alice", "service=imap|pop3", "PAM_SUCCESS"],
      ["alice", "service=IMAP|Mobile", "PAM_AUTH_ERR"],
      ["alice", "service=Outlook", "PAM_SUCCESS"],
      ["bob", "service=imap", "PAM_SUCCESS"], // enabled for bob
      ["bob", "service=pop3", "PAM_AUTH_ERR"], // disabled for bob
      ["bob", "service=POP3|imap", "PAM_SUCCESS"],
    ];
    for (const t of TRANSPORTS) {
      for (const [user, arg, result] of cases) {
        const r = await pam(user, user === "alice" ? "secret" : "bobpass", [
          ...socketArgs(s, t),
          arg,
        ]);
        assert.equal(r.reply.result, result, `${t} ${user} ${arg}`);
        if (result === "PAM_AUTH_ERR") {
          assert.match(r.reply.log[0].message, /reason="feature not enabled"/);
        }
      }
    }
    assert.equal(s.openSessions(), 0);
  } finally {
    await s.close();
  }
});

Deno.test("sim, file://: a server granting peer-credential logons still refuses a wrong password", async () => {
  const s = await sim({ unixPeer: "admin" });
  try {
    const r = await pam("alice", "wrong", [`socket=${s.unix}`]);
    assert.equal(r.reply.result, "PAM_AUTH_ERR");
    const local = await sim({ unixPeer: "local:alice" });
    try {
      assert.equal(
        (await pam("alice", "wrong", [`socket=${local.unix}`])).reply.result,
        "PAM_AUTH_ERR",
      );
    } finally {
      await local.close();
    }
    assert.equal((await pam("alice", "secret", [`socket=${s.unix}`])).reply.result, "PAM_SUCCESS");
    assert.ok(s.sessions().every((x) => x.method === "password"));
    assert.equal(s.openSessions(), 0);
  } finally {
    await s.close();
  }
});

Deno.test("sim, file://: against Zarafa 7.1.0 (ignores ulFlags) a success becomes PAM_AUTHINFO_UNAVAIL", async () => {
  const old = await sim({ version: "7.1.0", unixPeer: "admin" });
  try {
    for (const password of ["wrong", "secret"]) {
      const r = await pam("alice", password, [`socket=${old.unix}`]);
      assert.equal(r.reply.result, "PAM_AUTHINFO_UNAVAIL", password);
      assert.equal(r.reply.log[0].priority, "err");
      assert.match(r.reply.log[0].message, /server too old to verify the password over file:\/\//);
      assert.match(r.reply.log[0].message, /0,7,1,0/);
    }
    assert.equal(old.openSessions(), 0, "the unverifiable session was logged off");
    // Over TCP the same server is fine: no peer credentials there (and its old reply shape is read).
    assert.equal(
      (await pam("alice", "secret", [`socket=${old.tcp}`, "service=pop3"])).reply.result,
      "PAM_SUCCESS",
    );
    assert.equal((await pam("alice", "wrong", [`socket=${old.tcp}`])).reply.result, "PAM_AUTH_ERR");
    // ignore_authinfo_unavail also applies to the guard: PAM_IGNORE, never success.
    const ign = await pam("alice", "wrong", [`socket=${old.unix}`, "ignore_authinfo_unavail"]);
    assert.equal(ign.reply.result, "PAM_IGNORE");
  } finally {
    await old.close();
  }
  const fixed = await sim({ version: "7.1.1", unixPeer: "admin" });
  try {
    assert.equal(
      (await pam("alice", "wrong", [`socket=${fixed.unix}`])).reply.result,
      "PAM_AUTH_ERR",
    );
    assert.equal(
      (await pam("alice", "secret", [`socket=${fixed.unix}`])).reply.result,
      "PAM_SUCCESS",
    );
  } finally {
    await fixed.close();
  }
});

Deno.test("sim: older generations (ZCP 7.1/7.2, Kopano 8.x, 10.x) give the same answers over TCP", async () => {
  for (const version of ["7.1.4", "7.2.0", "8.0.0", "8.7.0", "10.0.5", "11.0.2"]) {
    const s = await sim({ version });
    try {
      assert.equal(
        (await pam("alice", "secret", [`socket=${s.tcp}`, "service=pop3"])).reply.result,
        "PAM_SUCCESS",
        version,
      );
      assert.equal(
        (await pam("alice", "secret", [`socket=${s.tcp}`, "service=imap"])).reply.result,
        "PAM_AUTH_ERR",
        version,
      );
      assert.equal(
        (await pam("alice", "wrong", [`socket=${s.tcp}`])).reply.result,
        "PAM_AUTH_ERR",
        version,
      );
      assert.equal(s.openSessions(), 0);
    } finally {
      await s.close();
    }
  }
});

Deno.test("sim: a feature the server generation does not know is no answer, not enabled", async () => {
  const cases: [string, string, string][] = [
    ["7.2.0", "service=imap", "PAM_SUCCESS"],
    ["7.2.0", "service=pop3", "PAM_AUTH_ERR"],
    ["7.2.0", "service=mobile", "PAM_AUTHINFO_UNAVAIL"], // Zarafa 7 knows imap and pop3 only
    ["7.2.0", "service=imap|mobile", "PAM_SUCCESS"],
    ["7.2.0", "service=pop3|webapp", "PAM_AUTHINFO_UNAVAIL"],
    ["8.0.0", "service=mobile", "PAM_SUCCESS"],
    ["8.0.0", "service=outlook", "PAM_AUTHINFO_UNAVAIL"],
    ["8.1.0", "service=outlook", "PAM_SUCCESS"],
    ["8.5.9", "service=webapp", "PAM_AUTHINFO_UNAVAIL"],
    ["8.6.0", "service=webapp", "PAM_SUCCESS"],
  ];
  const got: string[] = [];
  for (const [version, arg] of cases) {
    const s = await sim({ version, disabledFeatures: "pop3" });
    try {
      const r = await pam("alice", "secret", [`socket=${s.tcp}`, arg]);
      got.push(`${version} ${arg}: ${r.reply.result}`);
      if (r.reply.result === "PAM_AUTHINFO_UNAVAIL") {
        assert.match(r.reply.log[0].message, /does not list feature \w+ as enabled or disabled/);
      }
      assert.equal(s.openSessions(), 0);
    } finally {
      await s.close();
    }
  }
  assert.deepEqual(got, cases.map(([v, a, r]) => `${v} ${a}: ${r}`));
});

Deno.test("sim: an override spelled IMAP next to a default-disabled imap: disabled wins", async () => {
  const s = await sim({ disabledFeatures: "imap pop3" });
  try {
    for (
      const [arg, result] of [["service=imap", "PAM_AUTH_ERR"], ["service=mobile", "PAM_SUCCESS"]]
    ) {
      const r = await pam("carol", "carolpw", [`socket=${s.tcp}`, arg, "debug"]);
      assert.equal(r.reply.result, result, arg);
      assert.ok(
        r.reply.log.some((l) =>
          / features: enabled: IMAP mobile outlook webapp; disabled: imap pop3$/.test(l.message)
        ),
        JSON.stringify(r.reply.log),
      );
    }
  } finally {
    await s.close();
  }
});

Deno.test("sim: check exits 0, 1, 2, 3", async () => {
  const s = await sim();
  try {
    const check = (args: string[], password = "secret") =>
      runHelper(["check", "alice", ...args], { stdin: password + "\n" });
    assert.equal((await check([`socket=${s.tcp}`, "service=pop3"])).code, 0);
    assert.equal((await check([`socket=${s.tcp}`], "wrong")).code, 1);
    assert.equal((await check([`socket=${s.tcp}`, "service=imap"])).code, 1);
    s.setFaults([{ kind: "refuse" }]);
    const down = await check([`socket=${s.tcp}`]);
    assert.equal(down.code, 2);
    assert.match(down.stdout, /connect failed: connection refused/);
    s.clearFaults();
    assert.equal((await check([`socket=${s.tcp}`, "service=smtp"])).code, 3);
    const tls = await check([`socket=${s.tls}`, `cafile=${pki!.caFile}`, "service=pop3"]);
    assert.equal(tls.code, 0, tls.stdout);
    assert.match(tls.stdout, /TLS established, certificate verified/);
    assert.match(tls.stdout, /server version 0,11,0,2/);
    assert.match(tls.stdout, /enabled: outlook pop3 webapp; disabled: imap mobile/);
    assert.equal(s.openSessions(), 0);
  } finally {
    await s.close();
  }
});

Deno.test("sim: failover moves past an unreachable server, not past a refusal", async () => {
  const a = await sim();
  const b = await sim();
  try {
    a.setFaults([{ kind: "refuse" }]);
    const r = await pam("alice", "secret", [`socket=${a.tcp}`, `socket=${b.unix}`]);
    assert.equal(r.reply.result, "PAM_SUCCESS");
    assert.match(r.reply.log[0].message, new RegExp(`socket=${b.unix} `));
    a.clearFaults();
    const before = b.requests.length;
    const refused = await pam("alice", "wrong", [`socket=${a.tcp}`, `socket=${b.tcp}`]);
    assert.equal(refused.reply.result, "PAM_AUTH_ERR");
    assert.equal(b.requests.length, before, "the second server was not asked");
    // A fault from the first server is no answer: the second one decides.
    a.setFaults([{ kind: "http-500", method: "logon" }]);
    assert.equal(
      (await pam("alice", "wrong", [`socket=${a.tcp}`, `socket=${b.tcp}`])).reply.result,
      "PAM_AUTH_ERR",
    );
    assert.equal(a.openSessions() + b.openSessions(), 0);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("sim faults: every one fails closed within the timeout, sessions logged off", async () => {
  // The real server binds a UNIX-socket session to the client's pid, so a logoff on a new
  // connection (after a fault closed the first) reaches it; "socket" is the sim's closest match.
  const s = await sim({ unixOrigin: "socket" });
  const ENV = (inner: string) =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa"><SOAP-ENV:Body>${inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
  const laughs =
    `<?xml version="1.0"?>\n<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>` +
    ENV("<ns:logonResponse><er>0</er><ulSessionId>&b;</ulSessionId></ns:logonResponse>").replace(
      /^[^\n]*\n/,
      "",
    );
  const faults: [string, Parameters<Sim["setFaults"]>[0]][] = [
    ["garbage", [{ kind: "garbage" }]],
    ["http-500", [{ kind: "http-500" }]],
    ["http-503", [{ kind: "http-503" }]],
    ["oversized 100 MiB", [{ kind: "oversized" }]],
    ["hang", [{ kind: "hang" }]],
    ["drop", [{ kind: "drop" }]],
    ["reset", [{ kind: "reset" }]],
    ["close-mid-reply", [{ kind: "close-mid-reply", method: "logon" }]],
    ["billion laughs", [{ kind: "raw", reply: { body: laughs } }]],
    ["10,000-deep nesting", [{
      kind: "raw",
      reply: { body: ENV("<x>".repeat(10_000) + "</x>".repeat(10_000)) },
    }]],
    ["success without session id", [{
      kind: "raw",
      method: "logon",
      reply: { body: ENV("<ns:logonResponse><er>0</er></ns:logonResponse>") },
    }]],
    ["getUser 500 after a good logon", [{ kind: "http-500", method: "getUser" }]],
    ["getUser garbage after a good logon", [{ kind: "garbage", method: "getUser" }]],
    ["getUser hangs after a good logon", [{ kind: "hang", method: "getUser" }]],
  ];
  try {
    for (const t of ["tcp", "unix"] as const) {
      for (const [name, f] of faults) {
        s.setFaults(f);
        const open = s.openSessions();
        const r = await runPam(
          {
            user: "alice",
            password: "secret",
            args: [`socket=${s[t]}`, "timeout=1", "service=pop3"],
          },
          { measureRss: true },
        );
        assert.equal(
          r.reply.result,
          "PAM_AUTHINFO_UNAVAIL",
          `${t} ${name}: ${JSON.stringify(r.reply)}`,
        );
        assert.ok(r.ms < 2000, `${t} ${name}: ${r.ms} ms`);
        assert.ok(r.maxRssKb! < 120 * 1024, `${t} ${name}: ${r.maxRssKb} KiB`);
        s.clearFaults();
        // close-mid-reply cuts the logon reply: the server made a session we never learnt the id of.
        if (name !== "close-mid-reply") {
          assert.equal(s.openSessions(), open, `${t} ${name}: session left open`);
        }
      }
    }
  } finally {
    await s.close();
  }
});

Deno.test({
  name: "sim: clean up",
  fn: async () => {
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
    if (pki) await Deno.remove(pki.dir, { recursive: true });
  },
});
