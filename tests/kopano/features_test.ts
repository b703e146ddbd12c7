// The feature check fails closed (issue 10, point 5): a getUser reply the helper does not
// understand is "no answer" (PAM_AUTHINFO_UNAVAIL), never a success. A real server puts every
// feature it knows in exactly one of the two lists (docs/kopano.md §4), and every generation knows
// imap and pop3; replies that break that, or hold a second er, user object, property map or list,
// are not understood. Each case runs the helper as a process against a scripted server.
import assert from "node:assert/strict";
import { startFixtureServer } from "../lib/fixture_server.ts";
import { runPam } from "../lib/helper.ts";

const ENABLED = 1739788318; // PR_EC_ENABLED_FEATURES_A
const DISABLED = 1739853854; // PR_EC_DISABLED_FEATURES_A

const list = (prop: number, names: string[]) =>
  `<item><ulPropId>${prop}</ulPropId><sValues SOAP-ENC:arrayType="xsd:string[${names.length}]">` +
  names.map((n) => `<item>${n}</item>`).join("") + "</sValues></item>";

/** A getUser reply shaped like fixture c1, with the given property maps and trailing elements. */
function getUser(propmaps: string[], opts: { users?: number; tail?: string } = {}): string {
  const user = "<lpsUser><ulUserId>3</ulUserId><lpszUsername>alice</lpszUsername>" +
    "<ulObjClass>65537</ulObjClass>" +
    propmaps.map((p) => `<lpsMVPropmap>${p}</lpsMVPropmap>`).join("") + "</lpsUser>";
  return '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope' +
    ' xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"' +
    ' xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:ns="urn:zarafa">' +
    '<SOAP-ENV:Body SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    "<ns:getUserResponse>" + user.repeat(opts.users ?? 1) + "<er>0</er>" + (opts.tail ?? "") +
    "</ns:getUserResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>";
}

/** The lists of fixture c1 (disabled_features = imap mobile). */
const C1 = list(ENABLED, ["outlook", "pop3", "webapp"]) + list(DISABLED, ["imap", "mobile"]);

async function verdict(body: string, service: string) {
  const server = await startFixtureServer({ getUser: body });
  try {
    const r = await runPam({
      user: "alice",
      password: "Feature-Pw-1",
      args: [`socket=${server.url}`, "timeout=5", service],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(server.calls(), ["logon", "getUser", "logoff"]);
    assert.equal(server.openSessions(), 0, "the session is logged off");
    return { result: r.reply.result, line: r.reply.log[r.reply.log.length - 1] };
  } finally {
    await server.close();
  }
}

Deno.test("features: replies the helper does not understand are no answer, never success", async () => {
  const cases: [string, string, string, RegExp][] = [
    ["no property map", getUser([]), "service=pop3", /neither an enabled nor a disabled/],
    ["an empty property map", getUser([""]), "service=pop3", /neither an enabled nor a disabled/],
    [
      "only other properties",
      getUser([list(0x3a00001e, ["x"])]),
      "service=pop3",
      /neither an enabled nor a disabled/,
    ],
    [
      "a feature in both lists",
      getUser([list(ENABLED, ["imap", "pop3"]) + list(DISABLED, ["imap", "mobile"])]),
      "service=pop3",
      /feature \\"imap\\" is in both the enabled and the disabled list/,
    ],
    [
      "the required feature in both lists",
      getUser([list(ENABLED, ["imap", "pop3"]) + list(DISABLED, ["pop3"])]),
      "service=pop3",
      /feature \\"pop3\\" is in both/,
    ],
    [
      "imap in neither list",
      getUser([list(ENABLED, ["pop3", "webapp"]) + list(DISABLED, [])]),
      "service=pop3",
      /feature imap, which every server knows, is in neither list/,
    ],
    [
      "only a disabled list, without pop3",
      getUser([list(DISABLED, ["imap", "mobile"])]),
      "service=pop3",
      /feature pop3, which every server knows, is in neither list/,
    ],
    [
      "the required feature in neither list",
      getUser([list(ENABLED, ["imap", "pop3"]) + list(DISABLED, ["mobile"])]),
      "service=webapp",
      /server does not list feature webapp as enabled or disabled/,
    ],
    [
      "two enabled lists",
      getUser([list(ENABLED, ["imap"]) + list(ENABLED, ["pop3"]) + list(DISABLED, [])]),
      "service=pop3",
      /more than one enabled feature list/,
    ],
    [
      "two disabled lists (the _A and the _W tag)",
      getUser([list(ENABLED, ["pop3"]) + list(DISABLED, ["imap"]) + list(DISABLED + 1, ["pop3"])]),
      "service=imap|pop3",
      /more than one disabled feature list/,
    ],
    [
      "two property maps",
      getUser([list(ENABLED, ["imap", "pop3"]) + list(DISABLED, []), list(DISABLED, ["pop3"])]),
      "service=pop3",
      /more than one lpsMVPropmap/,
    ],
    ["two user objects", getUser([C1], { users: 2 }), "service=pop3", /more than one lpsUser/],
    [
      "a second er (an error)",
      getUser([C1], { tail: "<er>2147483664</er>" }),
      "service=pop3",
      /more than one er/,
    ],
    [
      "a second er (0 again)",
      getUser([C1], { tail: "<er>0</er>" }),
      "service=pop3",
      /more than one er/,
    ],
  ];
  const got = [];
  for (const [, body, service] of cases) got.push(await verdict(body, service));
  // Every case at once first, so that a failure shows all of them.
  assert.deepEqual(
    got.map((g, i) => `${cases[i][0]}: ${g.result}`),
    cases.map(([name]) => `${name}: PAM_AUTHINFO_UNAVAIL`),
  );
  got.forEach(({ line }, i) => {
    assert.equal(line.priority, "err", cases[i][0]);
    assert.match(line.message, /reason="server unavailable" detail=".*getUser: /, cases[i][0]);
    assert.match(line.message, cases[i][3], cases[i][0]);
  });
});

Deno.test("features: the shapes real servers send still decide", async () => {
  const cases: [string, string, string, string][] = [
    ["fixture c1's lists", getUser([C1]), "service=pop3", "PAM_SUCCESS"],
    ["fixture c1's lists", getUser([C1]), "service=imap|mobile", "PAM_AUTH_ERR"],
    // Sets are case-sensitive on the server: disabled_features "imap" and "IMAP" enabled for the
    // user put both spellings in. Kopano's gateways compare case-insensitively: disabled wins.
    [
      "case variants in both lists",
      getUser([
        list(ENABLED, ["IMAP", "mobile", "outlook", "pop3", "webapp"]) + list(DISABLED, ["imap"]),
      ]),
      "service=imap",
      "PAM_AUTH_ERR",
    ],
    [
      "case variants in both lists",
      getUser([
        list(ENABLED, ["IMAP", "mobile", "outlook", "pop3", "webapp"]) + list(DISABLED, ["imap"]),
      ]),
      "service=pop3",
      "PAM_SUCCESS",
    ],
    // Zarafa 7 knows only imap and pop3: a feature it does not know is in neither list, which is
    // not understood unless another required feature is enabled.
    [
      "Zarafa 7 lists",
      getUser([list(ENABLED, ["pop3"]) + list(DISABLED, ["imap"])]),
      "service=pop3|mobile",
      "PAM_SUCCESS",
    ],
    [
      "Zarafa 7 lists",
      getUser([list(ENABLED, []) + list(DISABLED, ["imap", "pop3"])]),
      "service=imap|pop3",
      "PAM_AUTH_ERR",
    ],
    [
      "Zarafa 7 lists",
      getUser([list(ENABLED, ["pop3"]) + list(DISABLED, ["imap"])]),
      "service=imap|mobile",
      "PAM_AUTHINFO_UNAVAIL",
    ],
    // Z-Push device ids and other names the server does not know are allowed in the lists.
    [
      "extra names",
      getUser([list(ENABLED, ["imap", "pop3"]) + list(DISABLED, ["mobile", "zpush-device-1"])]),
      "service=imap",
      "PAM_SUCCESS",
    ],
    [
      "only an enabled list, complete",
      getUser([list(ENABLED, ["imap", "pop3"])]),
      "service=pop3",
      "PAM_SUCCESS",
    ],
  ];
  const got = [];
  for (const [name, body, service] of cases) {
    got.push(`${name}, ${service}: ${(await verdict(body, service)).result}`);
  }
  assert.deepEqual(
    got,
    cases.map(([name, _, service, result]) => `${name}, ${service}: ${result}`),
  );
});
