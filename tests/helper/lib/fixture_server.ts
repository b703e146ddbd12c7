// A server that answers each SOAP call with a genuine kopano-server 11.0.2 reply from the shared
// fixtures (or any body the test gives), and counts the sessions it handed out and got back.
import { httpReply, RawRequest, RawServer, startRawServer } from "./raw_server.ts";

export const FIX = new URL("../../../../shared/fixtures/kopano-11.0.2/", import.meta.url).pathname;
export const fixture = (name: string) => Deno.readTextFileSync(`${FIX}${name}`);

export interface FixtureReplies {
  logon?: string;
  getUser?: string;
  logoff?: string;
  /** HTTP status line for every reply (default "200 OK"). */
  status?: string;
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
  const open = new Set<string>();
  const server = await startRawServer((req) => {
    const m = method(req);
    const body = m === "logon"
      ? replies.logon ?? fixture("a1_logon_alice_correct_password.response.body")
      : m === "getUser"
      ? replies.getUser ?? fixture("c1_getUser_self_alice.response.body")
      : replies.logoff ?? fixture("b1_logoff_alice.response.body");
    if (m === "logon") {
      const sid = /<er>0<\/er><ulSessionId>(\d+)</.exec(body)?.[1];
      if (sid && sid !== "0") open.add(sid);
    }
    if (m === "logoff") open.delete(/<ulSessionId>(\d+)</.exec(req.body)?.[1] ?? "");
    return httpReply(body, { status: replies.status });
  }, opts);
  return {
    ...server,
    calls: () => server.requests.map(method),
    openSessions: () => open.size,
  };
}
