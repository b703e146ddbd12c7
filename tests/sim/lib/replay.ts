// Replays captured requests to the sim and checks each live reply against the recorded one: same
// status line, same headers (Content-Length being the real length), the same body byte for byte
// once the per-server values are masked, and the connection closed or kept as recorded. The live
// ids seen in replies (sessions, entry ids) are rewritten into later requests of the chain.
import assert from "node:assert/strict";
import { exchange, type Generation, type HttpMessage } from "../../lib/captures.ts";
import { elementText, maskVolatile, requestBytes } from "./fixtures.ts";
import { RawConn, type RawResponse, type Target } from "./raw_http.ts";

const dec = new TextDecoder();

/** What a chain of replays learnt: recorded id -> live id, and every server GUID seen. */
export interface Live {
  rewrite: Map<string, string>;
  guids: Set<string>;
}

export const newLive = (): Live => ({ rewrite: new Map(), guids: new Set() });

/** Checks a live reply against the recorded one; records live ids for later requests. */
export function compare(name: string, res: RawResponse, rec: HttpMessage, live: Live): void {
  const recBody = dec.decode(rec.body);
  const liveBody = dec.decode(res.body);
  assert.deepEqual(maskVolatile(liveBody), maskVolatile(recBody), `${name}: body differs`);
  assert.deepEqual(res.head.split("\r\n")[0], rec.head[0], `${name}: status line`);
  const liveHeaders = res.head.split("\r\n").slice(1).filter((l) => l !== "");
  const anyLength = (l: string) => l.replace(/^Content-Length: \d+$/, "Content-Length: N");
  assert.deepEqual(
    liveHeaders.map(anyLength),
    rec.head.slice(1).map(anyLength),
    `${name}: headers`,
  );
  const cl = liveHeaders.find((l) => l.startsWith("Content-Length:"));
  if (cl) assert.deepEqual(Number(cl.split(":")[1]), res.body.length, `${name}: Content-Length`);

  // The masked values must still be well-formed, and become the rewrite map for later requests.
  for (const tag of ["ulSessionId", "sServerGuid", "sUserId", "sLicenseResponse"]) {
    const r = elementText(recBody, tag), l = elementText(liveBody, tag);
    if (!r || r === "0" || !l) continue;
    if (tag === "ulSessionId") {
      assert.match(l, /^[1-9]\d{0,19}$/);
      assert(BigInt(l) < 1n << 64n);
    }
    if (tag === "sServerGuid") {
      assert.deepEqual(atob(l).length, 16);
      live.guids.add(l);
    }
    if (tag === "sUserId") {
      const eid = Uint8Array.from(atob(l), (c) => c.charCodeAt(0));
      assert.deepEqual(
        [...eid.subarray(4, 8)],
        [0xAC, 0x21, 0xA9, 0x50],
        "entry id starts with MUIDECSAB",
      );
      assert.deepEqual(
        new DataView(eid.buffer).getUint32(28, true),
        Number(elementText(recBody, "ulUserId")),
      );
      assert.deepEqual(eid.length, atob(r).length, `${name}: entry id length`);
    }
    if (r !== l) live.rewrite.set(r, l);
  }
}

/** Sends one captured request on a new connection and checks the reply and the connection. */
export async function replay(
  t: Target,
  generation: Generation,
  name: string,
  live: Live,
): Promise<void> {
  const rec = exchange(generation, name);
  const c = await RawConn.open(t);
  try {
    await c.write(requestBytes(rec.request, live.rewrite));
    const res = await c.response();
    if (rec.response === null) {
      assert.deepEqual(res, null, `${name}: the server sends nothing and closes`);
      return;
    }
    assert(res, `${name}: no reply`);
    compare(name, res, rec.response, live);
    if (rec.response.head.includes("Connection: close")) {
      assert.ok(await c.closedWithin(2000), `${name}: connection closed after the reply`);
    } else {
      assert.ok(await c.quietFor(150), `${name}: connection kept open`);
    }
  } finally {
    c.close();
  }
}
