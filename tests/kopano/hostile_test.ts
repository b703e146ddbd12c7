// Hostile or broken servers: the helper process must fail closed (PAM_AUTHINFO_UNAVAIL), within
// the timeout, with bounded memory (peak RSS of the helper process measured by /usr/bin/time).
import assert from "node:assert/strict";
import { MAX_BODY } from "../../src/kopano/http.ts";
import { Action, httpReply, startRawServer } from "../lib/raw_server.ts";
import { ROOT, runPam } from "../lib/helper.ts";
import { gzipBomb } from "../lib/gzip_bomb.ts";
import { everyGeneration } from "../lib/captured_replies.ts";

const enc = new TextEncoder();
const TIMEOUT = 2;
// A helper run takes about 40 MB; a 100 MiB body read whole would take well over 200 MB.
const MAX_RSS_KB = 120 * 1024;

const ENV = (inner: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa"><SOAP-ENV:Body>${inner}</SOAP-ENV:Body></SOAP-ENV:Envelope>`;

const laughs = '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">' +
  Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ""};`.repeat(10)}">`)
    .join("") +
  "]>" +
  ENV("<ns:logonResponse><er>0</er><ulSessionId>&lol9;</ulSessionId></ns:logonResponse>").replace(
    /^<\?xml[^>]*>\n/,
    "",
  );

const stream100MiB = (head: string): Action => ({
  stream: async (w) => {
    await w(enc.encode(head));
    const chunk = new Uint8Array(1024 * 1024).fill(0x3c); // '<'
    for (let i = 0; i < 100; i++) await w(chunk);
  },
});

const hostile: [string, Action][] = [
  ["garbage", { send: "hello, this is not HTTP\r\n\r\n", close: true }],
  ["HTTP 500 without a body", {
    send: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
    close: true,
  }],
  ["billion laughs", httpReply(laughs)],
  ["10,000-deep nesting", httpReply(ENV("<a>".repeat(10_000) + "</a>".repeat(10_000)))],
  [
    "100 MiB body, Content-Length",
    stream100MiB(`HTTP/1.1 200 OK\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`),
  ],
  ["100 MiB body, chunked", {
    stream: async (w) => {
      await w(enc.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
      const chunk = enc.encode("100000\r\n" + "<".repeat(0x100000) + "\r\n");
      for (let i = 0; i < 100; i++) await w(chunk);
    },
  }],
  ["100 MiB body, to end of stream", stream100MiB("HTTP/1.0 200 OK\r\n\r\n")],
  [
    "success without a session id",
    httpReply(ENV("<ns:logonResponse><er>0</er></ns:logonResponse>")),
  ],
  [
    "success with session id 0",
    httpReply(ENV("<ns:logonResponse><er>0</er><ulSessionId>0</ulSessionId></ns:logonResponse>")),
  ],
  [
    "truncated XML",
    httpReply(ENV("<ns:logonResponse><er>0</er><ulSessionId>5</ulSessionId>").slice(0, -30)),
  ],
  [
    "unknown error code",
    httpReply(ENV("<ns:logonResponse><er>2147483681</er></ns:logonResponse>")),
  ],
  ["a JSON body", httpReply('{"er":0,"ulSessionId":1}')],
  // Exactly one er, and plain text in scalar fields (issue 10, point 6).
  [
    "two er: 0, then logon failed",
    httpReply(ENV(
      "<ns:logonResponse><er>0</er><ulSessionId>5</ulSessionId><er>2147483657</er></ns:logonResponse>",
    )),
  ],
  [
    "two er: logon failed, then 0",
    httpReply(ENV(
      "<ns:logonResponse><er>2147483657</er><er>0</er><ulSessionId>5</ulSessionId></ns:logonResponse>",
    )),
  ],
  [
    "an element inside er",
    httpReply(
      ENV("<ns:logonResponse><er><x/>0</er><ulSessionId>5</ulSessionId></ns:logonResponse>"),
    ),
  ],
  [
    "an element inside ulSessionId",
    httpReply(
      ENV("<ns:logonResponse><er>0</er><ulSessionId>5<x>6</x></ulSessionId></ns:logonResponse>"),
    ),
  ],
  [
    "an element inside lpszVersion",
    httpReply(ENV(
      "<ns:logonResponse><er>0</er><ulSessionId>5</ulSessionId><lpszVersion>0,11<b/>,0,2</lpszVersion></ns:logonResponse>",
    )),
  ],
  [
    "two session ids",
    httpReply(ENV(
      "<ns:logonResponse><er>0</er><ulSessionId>5</ulSessionId><ulSessionId>6</ulSessionId></ns:logonResponse>",
    )),
  ],
  [
    "two response elements",
    httpReply(ENV(
      "<ns:logonResponse><er>0</er><ulSessionId>5</ulSessionId></ns:logonResponse><ns:logonResponse><er>2147483657</er></ns:logonResponse>",
    )),
  ],
  [
    "two SOAP bodies",
    httpReply(
      ENV("<ns:logonResponse><er>0</er><ulSessionId>5</ulSessionId></ns:logonResponse>").replace(
        "</SOAP-ENV:Envelope>",
        "<SOAP-ENV:Body><ns:logonResponse><er>2147483657</er></ns:logonResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>",
      ),
    ),
  ],
  [
    "a success framed by both Transfer-Encoding and Content-Length",
    (() => {
      const body = ENV(
        "<ns:logonResponse><er>0</er><ulSessionId>5</ulSessionId></ns:logonResponse>",
      );
      const n = enc.encode(body).length;
      return `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: ${n}\r\n\r\n` +
        `${n.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    })(),
  ],
  ["closed without a reply", { close: true }],
  ["never answers", { hang: true }],
];

for (const [name, action] of hostile) {
  Deno.test(`hostile server: ${name} -> PAM_AUTHINFO_UNAVAIL within the timeout, bounded memory`, async () => {
    const server = await startRawServer(() => action);
    try {
      const r = await runPam({
        user: "alice",
        password: "Hostile-Pw-1",
        args: [`socket=${server.url}`, `timeout=${TIMEOUT}`],
      }, { measureRss: true });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.reply.result, "PAM_AUTHINFO_UNAVAIL", JSON.stringify(r.reply));
      assert.equal(r.reply.log.length, 1);
      assert.equal(r.reply.log[0].priority, "err");
      assert.ok(r.ms < (TIMEOUT + 1) * 1000, `${r.ms} ms`);
      assert.ok(r.maxRssKb !== undefined && r.maxRssKb < MAX_RSS_KB, `peak RSS ${r.maxRssKb} KiB`);
      // Only a logon was attempted: no session was ever opened.
      assert.ok(server.requests.every((q) => q.body.includes("<ns:logon>")));
    } finally {
      await server.close();
    }
  });
}

Deno.test("replies without a body (204, 304, empty) are no answer at once, not at the timeout", async () => {
  const empty: [string, string, RegExp][] = [
    ["204, no framing", "HTTP/1.1 204 No Content\r\n\r\n", /logon: HTTP status 204/],
    [
      "204 claiming a chunked body",
      "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
      /logon: HTTP status 204/,
    ],
    [
      "304 with the length of a body it never has",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 120\r\n\r\n",
      /logon: HTTP status 304/,
    ],
    [
      "200, Content-Length 0",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      /logon: reply has no body/,
    ],
    [
      "200, an empty chunked body",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      /logon: reply has no body/,
    ],
  ];
  const got: string[] = [];
  for (const [name, head, why] of empty) {
    // The server keeps the connection open after the head, as a keep-alive server would.
    const server = await startRawServer(() => head);
    try {
      const r = await runPam({
        user: "alice",
        password: "pw",
        args: [`socket=${server.url}`, "timeout=5"],
      });
      const message = r.reply.log[0].message;
      got.push(
        `${name}: ${r.reply.result}, ${
          r.ms < 2500 ? "at once" : `after ${Math.round(r.ms)} ms`
        }, ` +
          (why.test(message) ? "named" : message),
      );
    } finally {
      await server.close();
    }
  }
  assert.deepEqual(got, empty.map(([name]) => `${name}: PAM_AUTHINFO_UNAVAIL, at once, named`));
});

Deno.test("never answers: abandoned within timeout + 1 s, the message says timed out", async () => {
  const server = await startRawServer(() => ({ hang: true }));
  try {
    const r = await runPam({
      user: "alice",
      password: "pw",
      args: [`socket=${server.url}`, "timeout=1"],
    });
    assert.equal(r.reply.result, "PAM_AUTHINFO_UNAVAIL");
    assert.ok(r.ms < 2000, `${r.ms} ms`);
    assert.match(r.reply.log[0].message, /logon: timed out after 1 s/);
  } finally {
    await server.close();
  }
});

for (const { generation, logonAccepted } of everyGeneration()) {
  Deno.test(`a server hanging on getUser: fail closed at the deadline, the session still logged off (Kopano ${generation}'s logon)`, async () => {
    const session = /<ulSessionId>(\d+)</.exec(logonAccepted.body)![1];
    const logoffs: string[] = [];
    const server = await startRawServer((req) => {
      if (req.body.includes("<ns:logon>")) return httpReply(logonAccepted.body);
      if (req.body.includes("<ns:getUser>")) return { hang: true };
      logoffs.push(req.body);
      return httpReply(ENV("<ns:logoffResponse><result>0</result></ns:logoffResponse>"));
    });
    try {
      const r = await runPam({
        user: "alice",
        password: "pw",
        args: [`socket=${server.url}`, "timeout=1", "service=imap"],
      });
      assert.equal(r.reply.result, "PAM_AUTHINFO_UNAVAIL");
      assert.match(r.reply.log[0].message, /getUser: timed out after 1 s/);
      assert.ok(r.ms < 2000, `${r.ms} ms`);
      assert.equal(logoffs.length, 1);
      assert.ok(logoffs[0].includes(`<ulSessionId>${session}</ulSessionId>`), logoffs[0]);
    } finally {
      await server.close();
    }
  });
}

Deno.test("hostile server: a gzip bomb (1 MB inflating to 1020 MiB) -> the built helper refuses it uninflated, at once, peak RSS under 64 MB", async () => {
  const helper = `${ROOT}/dist/pam_mapi_helper`;
  await Deno.stat(helper).catch(() => {
    throw new Error(`${helper} is missing: run "deno task build" (deno task test does)`);
  });
  const bomb = gzipBomb(1020);
  const head = enc.encode(
    "HTTP/1.1 200 OK\r\nServer: gSOAP/2.8\r\nContent-Type: text/xml; charset=utf-8\r\n" +
      `Content-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\nConnection: keep-alive\r\n\r\n`,
  );
  const reply = new Uint8Array(head.length + bomb.length);
  reply.set(head);
  reply.set(bomb, head.length);
  assert.ok(reply.length < MAX_BODY, `${reply.length} bytes: under the 1 MiB reply limit`);
  const server = await startRawServer(() => reply);
  try {
    const r = await runPam({
      user: "alice",
      password: "Hostile-Pw-1",
      args: [`socket=${server.url}`, "timeout=10", "debug"],
    }, { helper, measureRss: true, clearEnv: true });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.reply.result, "PAM_AUTHINFO_UNAVAIL", JSON.stringify(r.reply));
    console.log(
      `gzip bomb of ${reply.length} bytes: ${Math.round(r.ms)} ms, peak RSS ${r.maxRssKb} KiB`,
    );
    assert.ok(r.maxRssKb !== undefined && r.maxRssKb * 1024 < 64e6, `peak RSS ${r.maxRssKb} KiB`);
    assert.ok(r.ms < 5000, `${r.ms} ms`);
    assert.ok(
      r.reply.log.some((l) =>
        l.message.endsWith(
          "logon: the server compressed its reply (Content-Encoding: gzip), which pam_mapi never asks for",
        )
      ),
      JSON.stringify(r.reply.log),
    );
  } finally {
    await server.close();
  }
});
