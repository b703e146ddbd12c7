// The feature lists getUser reports: disabled_features merged with each user's explicit lists by
// the server's algorithm (docs/kopano.md#4-getuser-the-feature-lists-and-logoff), over the
// feature names the emulated release knows (docs/kopano.md#5-server-generations).

import assert from "node:assert/strict";
import { mergeFeatures, type SimUser } from "../kopano_sim/mod.ts";
import { call, openSession } from "./lib/calls.ts";
import { simEnv } from "./lib/env.ts";
import { features, getUser } from "./lib/soap.ts";
import { text as bodyText } from "./lib/raw_http.ts";

async function listsOf(
  opts: { disabledFeatures?: string; version?: string; users?: SimUser[] },
  user = "alice",
  password = "secret",
) {
  await using env = await simEnv(opts);
  const { c, sid } = await openSession(env.target.tcp, { user, password });
  try {
    const g = await call(c, getUser(sid));
    return { ...features(g.value.lpsUser), xml: bodyText(g.res) };
  } finally {
    c.close();
  }
}

Deno.test("features: stock server (disabled_features = imap pop3)", async () => {
  const alice = await listsOf({});
  assert.deepEqual([alice.enabled, alice.disabled], [["mobile", "outlook", "webapp"], [
    "imap",
    "pop3",
  ]]);
  const bob = await listsOf({}, "bob", "bobpass"); // imap enabled, pop3 disabled for him
  assert.deepEqual([bob.enabled, bob.disabled], [["imap", "mobile", "outlook", "webapp"], [
    "pop3",
  ]]);
});

Deno.test("features: the recorded server (disabled_features = imap mobile), fixtures c1/c6", async () => {
  const alice = await listsOf({ disabledFeatures: "imap mobile" });
  assert.deepEqual([alice.enabled, alice.disabled], [["outlook", "pop3", "webapp"], [
    "imap",
    "mobile",
  ]]);
  assert.ok(alice.xml.includes(
    '<lpsMVPropmap><item><ulPropId>1739788318</ulPropId><sValues SOAP-ENC:arrayType="xsd:string[3]">' +
      "<item>outlook</item><item>pop3</item><item>webapp</item></sValues></item>",
  ));
  const bob = await listsOf({ disabledFeatures: "imap mobile" }, "bob", "bobpass");
  assert.deepEqual([bob.enabled, bob.disabled], [["imap", "outlook", "webapp"], [
    "mobile",
    "pop3",
  ]]);
});

Deno.test("features: explicit disable beats enable; unknown names; tabs, repeats, byte order", async () => {
  const users: SimUser[] = [{
    name: "alice",
    password: "secret",
    enabled: ["pop3", "zpush-device", "imap"],
    disabled: ["imap", "Webapp", "webapp"],
  }];
  const r = await listsOf({ disabledFeatures: "\timap  pop3 custom\t", users });
  assert.deepEqual(r.enabled, ["mobile", "outlook", "pop3", "zpush-device"]);
  assert.deepEqual(r.disabled, ["Webapp", "custom", "imap", "webapp"]); // "W" < "c" in bytes
});

Deno.test("features: an empty list keeps its element, with arrayType [0]", async () => {
  const r = await listsOf({ disabledFeatures: "" });
  assert.deepEqual(r.enabled, ["imap", "mobile", "outlook", "pop3", "webapp"]);
  assert.deepEqual(r.disabled, []);
  assert.ok(
    r.xml.includes(
      '<ulPropId>1739853854</ulPropId><sValues SOAP-ENC:arrayType="xsd:string[0]"></sValues>',
    ),
  );
});

Deno.test("features: the known feature names follow the emulated version", async () => {
  const cases: Array<[string, string[]]> = [
    ["7.1.11", ["imap", "pop3"]],
    ["7.2.0", ["imap", "pop3"]],
    ["8.0.0", ["imap", "mobile", "pop3"]],
    ["8.1.0", ["imap", "mobile", "outlook", "pop3"]],
    ["8.5.9", ["imap", "mobile", "outlook", "pop3"]],
    ["8.6.0", ["imap", "mobile", "outlook", "pop3", "webapp"]],
    ["11.0.2", ["imap", "mobile", "outlook", "pop3", "webapp"]],
  ];
  for (const [version, known] of cases) {
    const r = await listsOf({ version, disabledFeatures: "" });
    assert.deepEqual(r.enabled, known, version);
  }
  // On ZCP, names it does not know appear in no list unless configured.
  const zcp = await listsOf({ version: "7.1.11", disabledFeatures: "pop3" });
  assert.deepEqual([zcp.enabled, zcp.disabled], [["imap"], ["pop3"]]);
});

Deno.test("features: mergeFeatures is the same algorithm as a unit", () => {
  assert.deepEqual(mergeFeatures(["imap", "pop3"], "imap", ["imap"], ["imap"]), {
    enabled: ["pop3"],
    disabled: ["imap"],
  });
  assert.deepEqual(mergeFeatures(["imap", "pop3"], "", [], []), {
    enabled: ["imap", "pop3"],
    disabled: [],
  });
  assert.deepEqual(mergeFeatures(["imap"], "x x", ["x"], []), {
    enabled: ["imap", "x"],
    disabled: [],
  });
});
