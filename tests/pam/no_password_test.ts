// The password never appears in any log record or any check output, on any path: success, refusal,
// features, faults, timeouts, the file:// guard, local refusals, and a hostile server that echoes
// the password back in every field it can (fault text, version, feature names, HTTP headers).
import assert from "node:assert/strict";
import { startFixtureServer } from "../lib/fixture_server.ts";
import { repliesOf } from "../lib/captured_replies.ts";
import { runHelper, runPam } from "../lib/helper.ts";
import { Action, httpReply, startRawServer } from "../lib/raw_server.ts";

const PW = "Zq7-Leak-Canary-x41";

const ENV = (inner: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa"><SOAP-ENV:Body>${inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;

// Echoes the password it was sent into every reply field a log line might quote.
function echoing(kind: string): (req: { body: string }) => Action {
  return (req) => {
    const pw = /<szPassword>([^<]*)<\/szPassword>/.exec(req.body)?.[1] ?? PW;
    if (req.body.includes("<ns:logoff>")) {
      return httpReply(ENV(`<ns:logoffResponse><result>x${pw}</result></ns:logoffResponse>`));
    }
    switch (kind) {
      case "fault":
        return httpReply(
          ENV(
            `<SOAP-ENV:Fault><faultcode>${pw}</faultcode><faultstring>bad password ${pw}</faultstring></SOAP-ENV:Fault>`,
          ),
          { status: "500 Internal Server Error" },
        );
      case "version":
        return httpReply(ENV(
          `<ns:logonResponse><er>0</er><ulSessionId>9</ulSessionId><lpszVersion>${pw}</lpszVersion></ns:logonResponse>`,
        ));
      case "features":
        if (req.body.includes("<ns:getUser>")) {
          return httpReply(ENV(
            `<ns:getUserResponse><lpsUser><lpsMVPropmap><item><ulPropId>1739853854</ulPropId><sValues><item>${pw}</item><item>imap</item></sValues></item></lpsMVPropmap></lpsUser><er>0</er></ns:getUserResponse>`,
          ));
        }
        return httpReply(ENV(
          "<ns:logonResponse><er>0</er><ulSessionId>9</ulSessionId><lpszVersion>0,11,0,2</lpszVersion></ns:logonResponse>",
        ));
      case "encoding":
        return {
          send: `HTTP/1.1 200 OK\r\nContent-Encoding: ${pw}\r\nContent-Length: 1\r\n\r\nx`,
          close: true,
        };
      default:
        return { send: `HTTP/1.1 200 OK\r\nTransfer-Encoding: ${pw}\r\n\r\n`, close: true };
    }
  };
}

Deno.test("no log record and no check output ever contains the password", async () => {
  const servers = [
    await startFixtureServer({}),
    await startFixtureServer({ logon: repliesOf("11.0.2").logonWrongPassword }),
    await startFixtureServer({
      logon: repliesOf("11.0.2").logonAccepted.body.replace(
        /<lpszVersion>[^<]*<\/lpszVersion>/,
        "",
      ),
    }, { transport: "unix" }),
    await startRawServer(echoing("fault")),
    await startRawServer(echoing("version"), { transport: "unix" }),
    await startRawServer(echoing("features")),
    await startRawServer(echoing("encoding")),
    await startRawServer(echoing("transfer")),
  ];
  const hanging = await startRawServer(() => ({ hang: true }));
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${(l.addr as Deno.NetAddr).port}/`;
  l.close();
  const argSets = [
    ...servers.map((s) => [`socket=${s.url}`, "timeout=1", "service=imap|pop3"]),
    ...servers.map((s) => [`socket=${s.url}`, "timeout=1"]),
    [`socket=${dead}`],
    [`socket=${hanging.url}`, "timeout=1", "service=imap"],
  ];
  const passwords = [PW, PW + "\x01", PW + "x".repeat(600)];
  let runs = 0;
  try {
    for (const args of argSets) {
      for (const extra of [[], ["debug"]]) {
        for (const password of passwords) {
          const r = await runPam({ user: "alice", password, args: [...args, ...extra] });
          assert.ok(
            !r.stdout.includes(PW) && !r.stderr.includes(PW),
            `--pam ${args} ${extra}: ${r.stdout}`,
          );
          assert.ok(r.reply.log.length >= 1);
          runs++;
        }
        for (const json of [[], ["--json"]]) {
          const c = await runHelper(["check", ...json, "alice", ...args, ...extra], {
            stdin: PW + "\n",
          });
          assert.ok(
            !c.stdout.includes(PW) && !c.stderr.includes(PW),
            `check ${json} ${args}: ${c.stdout}`,
          );
          assert.ok(c.stdout.length > 0);
          runs++;
        }
      }
    }
    // The canary really reached the echoing servers (so the test could have failed).
    const faultServer = servers[3] as { requests: { body: string }[] };
    assert.ok(faultServer.requests.some((q) => q.body.includes(PW)));
    assert.ok(runs > 150);
  } finally {
    for (const s of servers) await s.close();
    await hanging.close();
  }
});
