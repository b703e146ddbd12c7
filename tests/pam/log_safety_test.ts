// No log line carries control, bidi, invisible formatting or line-separator characters, whatever
// their source (issue 10, point 6): server text (version, feature names, fault strings), the user
// name and remote host, module arguments. Checked on the helper process's reply (--pam, with
// debug) and on what `check` prints, against a server that puts such characters everywhere.
import assert from "node:assert/strict";
import { cleanMessage } from "../../src/pam/protocol.ts";
import { httpReply, startRawServer } from "../lib/raw_server.ts";
import { runHelper, runPam } from "../lib/helper.ts";

/** What a log reader must never get: C0/C1 controls, bidi controls, invisible format characters. */
const NASTY = [
  "\x1b",
  "\x7f",
  "\u0085", // NEXT LINE
  "\u00ad", // soft hyphen
  "\u034f", // combining grapheme joiner
  "\u061c", // ARABIC LETTER MARK (bidi)
  "\u180e",
  "\u200b",
  "\u200e",
  "\u200f",
  "\u2028",
  "\u2029",
  "\u202a",
  "\u202e", // RIGHT-TO-LEFT OVERRIDE
  "\u2060",
  "\u2066",
  "\u2067",
  "\u2068",
  "\u2069",
  "\u3164", // HANGUL FILLER (invisible)
  "\ufe0f", // variation selector
  "\ufeff", // BOM / ZERO WIDTH NO-BREAK SPACE
  "\ufff9",
  "\u{1d173}",
  "\u{e0041}", // TAG LATIN CAPITAL LETTER A
];
const BAD = NASTY.join("");
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;

const ENV = (inner: string) =>
  '<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope' +
  ' xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa">' +
  `<SOAP-ENV:Body>${inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;
// XML cannot carry C0 controls: those go in as they would arrive, everything else as text.
const xmlSafe = BAD.replace("\x1b", "&#x85;");
const list = (prop: number, names: string[]) =>
  `<item><ulPropId>${prop}</ulPropId><sValues>` +
  names.map((n) => `<item>${n}</item>`).join("") + "</sValues></item>";

function hostileServer() {
  return startRawServer((req) => {
    if (req.body.includes("<ns:logon>")) {
      return httpReply(ENV(
        "<ns:logonResponse><er>0</er><ulSessionId>77</ulSessionId>" +
          `<lpszVersion>0,11${xmlSafe},0,2</lpszVersion></ns:logonResponse>`,
      ));
    }
    if (req.body.includes("<ns:getUser>")) {
      return httpReply(ENV(
        "<ns:getUserResponse><lpsUser><lpsMVPropmap>" +
          list(1739788318, ["imap", `pop3${xmlSafe}x`]) +
          list(1739853854, ["pop3", `zpush${xmlSafe}device`]) +
          "</lpsMVPropmap></lpsUser><er>0</er></ns:getUserResponse>",
      ));
    }
    // The logoff fails with a fault: its text reaches a warning line.
    return httpReply(
      ENV(
        `<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server${xmlSafe}</faultcode>` +
          `<faultstring>gone${xmlSafe}away</faultstring></SOAP-ENV:Fault>`,
      ),
      { status: "500 Internal Server Error" },
    );
  });
}

/** Every line of `text` (a log message is one line) is free of such characters. */
function assertClean(text: string, where: string) {
  for (const line of text.replace(/\n$/, "").split("\n")) {
    const c = UNSAFE.exec(line)?.[0];
    const hex = c?.codePointAt(0)?.toString(16).padStart(4, "0");
    assert.ok(c === undefined, `${where}: U+${hex} in ${JSON.stringify(line)}`);
  }
}

// Format characters are allowed in a user name (only controls are refused before any request).
const USER = `eve${NASTY.filter((c) => !/\p{Cc}/u.test(c)).join("")}@example.com`;

Deno.test("log lines: no control, bidi or invisible character from the server, the user or rhost", async () => {
  const server = await hostileServer();
  try {
    const r = await runPam({
      user: USER,
      password: "pw",
      rhost: `198.51.100.7${BAD}`,
      args: [`socket=${server.url}`, "service=imap", "debug", "timeout=5"],
    });
    assert.equal(r.reply.result, "PAM_SUCCESS", JSON.stringify(r.reply));
    const messages = r.reply.log.map((l) => l.message);
    // The server's text did reach the log (neutralised, not dropped): version, features, fault.
    assert.ok(messages.some((m) => /server version 0,11 +,0,2$/.test(m)), messages.join("\n"));
    assert.ok(messages.some((m) => / zpush +device/.test(m)), messages.join("\n"));
    assert.ok(
      messages.some((m) => /session not logged off.*gone +away/.test(m)),
      messages.join("\n"),
    );
    assert.ok(messages.some((m) => /user=eve\?+@example\.com rhost=198\.51\.100\.7\?+ /.test(m)));
    for (const m of messages) assertClean(m, "--pam");

    const check = await runHelper(
      ["check", USER, `socket=${server.url}`, "service=imap", "debug", "timeout=5"],
      { stdin: "pw\n" },
    );
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assertClean(check.stdout, "check stdout");
    assertClean(check.stderr, "check stderr");
  } finally {
    await server.close();
  }
});

Deno.test("log lines: module arguments are shown neutralised", async () => {
  const arg = `socket=http://localhost/${BAD}`;
  const r = await runPam({ user: "alice", password: "pw", args: [arg] });
  assert.equal(r.reply.result, "PAM_SERVICE_ERR");
  assert.match(r.reply.log[0].message, /invalid module arguments: socket=".*": unsupported/);
  assertClean(r.reply.log[0].message, "--pam");
  const check = await runHelper(["check", "alice", arg], { stdin: "pw\n" });
  assert.equal(check.code, 3);
  assertClean(check.stderr, "check stderr");
});

Deno.test("log lines: the final gate replaces every such character, one ? each", () => {
  for (const c of NASTY) {
    const hex = c.codePointAt(0)!.toString(16);
    assert.equal(cleanMessage(`a${c}b`), "a?b", `U+${hex}`);
  }
  assert.equal(cleanMessage(`x${BAD}y`), `x${"?".repeat(NASTY.length)}y`);
  // Visible text, also non-ASCII, passes unchanged.
  assert.equal(cleanMessage("jürgen € 😀 日本 ǅ"), "jürgen € 😀 日本 ǅ");
});
