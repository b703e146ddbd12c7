// A server that answers each SOAP call with a genuine kopano-server reply (tests/fixtures/, by
// meaning through tests/lib/captured_replies.ts: 11.0.2's unless `generation` says otherwise) or
// any body the test gives, and counts the sessions it handed out and got back. A reply other than
// 200 is sent as gSOAP sends a fault: with "Connection: close", and the connection closed.
import { httpReply, RawRequest, RawServer, startRawServer } from "./raw_server.ts";
import type { CapturedReply, Generation } from "./captures.ts";
import { repliesOf } from "./captured_replies.ts";

/** A body (sent with 200 OK), or a captured reply with its own status. */
export type ReplySpec = string | CapturedReply;

export interface FixtureReplies {
  logon?: ReplySpec;
  getUser?: ReplySpec;
  logoff?: ReplySpec;
  /** Whose captured replies answer the calls not given above (default 11.0.2). */
  generation?: Generation;
}

export interface FixtureServer extends RawServer {
  calls(): string[];
  /** Sessions granted by logon replies with er 0 minus logoff calls for them. */
  openSessions(): number;
}

const method = (req: RawRequest) => /<ns:(\w+)>/.exec(req.body)?.[1] ?? "?";

export async function startFixtureServer(
  replies: FixtureReplies,
  opts: { transport?: "tcp" | "unix" | "tls"; cert?: string; key?: string } = {},
): Promise<FixtureServer> {
  const captured = repliesOf(replies.generation ?? "11.0.2");
  const open = new Set<string>();
  const server = await startRawServer((req) => {
    const m = method(req);
    const spec = m === "logon"
      ? replies.logon ?? captured.logonAccepted
      : m === "getUser"
      ? replies.getUser ?? captured.getUserAlice
      : replies.logoff ?? captured.logoff;
    const { body, status } = typeof spec === "string" ? { body: spec, status: "200 OK" } : spec;
    if (m === "logon") {
      const sid = /<er>0<\/er><ulSessionId>(\d+)</.exec(body)?.[1];
      if (sid && sid !== "0") open.add(sid);
    }
    if (m === "logoff") open.delete(/<ulSessionId>(\d+)</.exec(req.body)?.[1] ?? "");
    if (status.startsWith("200 ")) return httpReply(body, { status });
    const length = new TextEncoder().encode(body).length;
    return {
      send: httpReply(body, {
        status,
        headers: [`Content-Length: ${length}`, "Connection: close"],
      }),
      close: true,
    };
  }, opts);
  return {
    ...server,
    calls: () => server.requests.map(method),
    openSessions: () => open.size,
  };
}
