// `pam_mapi_helper --pam`: one request from the shim on stdin, one reply on stdout, exit 0
// (docs/protocol.md). Never prompts, never writes anything else to stdout.
import { launcherLog } from "./launch.ts";
import { MAX_REQUEST } from "./protocol.ts";
import { handleRequest, internalError } from "./request.ts";

/**
 * Reads stdin to the end, but never more than limit + 1 bytes (enough to see it is too long).
 * Synchronously: nothing else can happen before the request is in, and the first asynchronous
 * read in a Deno process costs about 0.3 ms more than readSync, on every login.
 */
function readLimited(limit: number): Uint8Array {
  const buf = new Uint8Array(limit + 1);
  let n = 0;
  while (n < buf.length) {
    const got = Deno.stdin.readSync(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return buf.subarray(0, n);
}

export async function runPam(): Promise<number> {
  let reply: string;
  try {
    // One request per process: narrow the permissions to what its arguments need.
    reply = (await handleRequest(readLimited(MAX_REQUEST), { narrow: true, lead: launcherLog() }))
      .reply;
  } catch (e) {
    reply = internalError(e).reply; // stdin could not be read
  }
  const out = new TextEncoder().encode(reply);
  let off = 0;
  while (off < out.length) off += Deno.stdout.writeSync(out.subarray(off));
  return 0;
}
