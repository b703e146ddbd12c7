// After logins, an idle resident helper holds no copy of the password in its memory, in any form
// the password travels in: UTF-8 (the token, the SOAP body; also what V8 keeps of an ASCII
// string), UTF-16 (V8's string of one with a non-Latin-1 character), base64 (the request),
// XML-escaped (the logon body; the passwords hold '&' and '<'), and those in UTF-16 too. The scan reads every
// readable, writable or anonymous mapping of the daemon through /proc/PID/mem; as a control, a
// user name sent with the same requests (which the daemon does make a string) must be found, so
// that a scan that sees nothing cannot pass. What remains outside its sight (the kernel's socket
// buffers, a TLS library's buffers for https://) is said in docs/security.md.
import assert from "node:assert/strict";
import { b64 } from "../lib/helper.ts";
import { xmlEscape } from "../../src/kopano/soap.ts";
import { login, simAllTransports, startDaemon } from "./lib.ts";

const enc = new TextEncoder();
const tag = () => crypto.randomUUID().slice(0, 8);
const utf16le = (s: string) => new Uint8Array(Uint16Array.from(s, (c) => c.charCodeAt(0)).buffer);

/** Every form of `text` the scan looks for. */
function forms(text: string): Map<string, Uint8Array> {
  return new Map([
    ["UTF-8", enc.encode(text)],
    ["UTF-16", utf16le(text)],
    ["base64", enc.encode(b64(text))],
    ["base64 in UTF-16", utf16le(b64(text))],
    ["XML-escaped", enc.encode(xmlEscape(text))],
    ["XML-escaped in UTF-16", utf16le(xmlEscape(text))],
  ]);
}

function occurrences(hay: Uint8Array, needle: Uint8Array, end: number): number {
  let n = 0;
  for (let at = hay.indexOf(needle[0]); at >= 0 && at + needle.length <= hay.length;) {
    let k = 1;
    while (k < needle.length && hay[at + k] === needle[k]) k++;
    if (k === needle.length && at < end) n++;
    at = hay.indexOf(needle[0], at + 1);
  }
  return n;
}

/** How often each needle occurs in the process's memory. */
async function scan(pid: number, needles: Map<string, Uint8Array>): Promise<Map<string, number>> {
  const counts = new Map([...needles.keys()].map((k) => [k, 0]));
  const overlap = Math.max(...[...needles.values()].map((n) => n.length));
  const mem = await Deno.open(`/proc/${pid}/mem`);
  try {
    for (const line of (await Deno.readTextFile(`/proc/${pid}/maps`)).split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r)(.)..\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line);
      if (!m || m[5] === "[vvar]" || m[5] === "[vsyscall]" || m[5] === "[vvar_vclock]") continue;
      if (m[4] !== "w" && m[5] !== "" && !m[5].startsWith("[")) continue; // read-only file text
      const [start, end] = [parseInt(m[1], 16), parseInt(m[2], 16)];
      const block = 1 << 20;
      for (let at = start; at < end; at += block) {
        const size = Math.min(block + overlap, end - at);
        const buf = new Uint8Array(size);
        try {
          await mem.seek(at, Deno.SeekMode.Start);
          let got = 0;
          while (got < size) {
            const n = await mem.read(buf.subarray(got));
            if (n === null) break;
            got += n;
          }
        } catch {
          continue; // a guard page or a mapping that went away meanwhile
        }
        // Matches starting in the overlap are counted by the next block.
        const counted = Math.min(block, end - at);
        for (const [name, needle] of needles) {
          counts.set(name, counts.get(name)! + occurrences(buf, needle, counted));
        }
      }
    }
  } finally {
    mem.close();
  }
  return counts;
}

Deno.test("an idle daemon holds no copy of the passwords it checked (http, https, file), in any form they travelled in", async () => {
  const right = `Mem-${tag()}-&<-€-right`;
  const wrong = `Mem-${tag()}-&<-wrong`; // ASCII: a one-byte string in V8
  const user = `ctl-${tag()}-nobody`;
  await using w = await simAllTransports({ users: [{ name: "alice", password: right }] });
  await using d = await startDaemon();
  for (const args of [w.args.tcp, w.args.tls, w.args.unix]) {
    const go = async (u: string, password: string, extra: string[], want: string) =>
      assert.equal(
        (await login(d.socket, { user: u, password, args: [...args, ...extra] })).result,
        want,
        `${u} ${args[0]} ${extra}`,
      );
    await go("alice", right, [], "PAM_SUCCESS");
    await go("alice", right, ["service=imap"], "PAM_AUTH_ERR"); // logon, getUser, logoff
    await go(user, wrong, [], "PAM_AUTH_ERR");
  }
  await new Promise((r) => setTimeout(r, 1000)); // idle
  const needles = new Map<string, Uint8Array>();
  for (const [name, bytes] of forms(right)) needles.set(`right password, ${name}`, bytes);
  for (const [name, bytes] of forms(wrong)) needles.set(`wrong password, ${name}`, bytes);
  needles.set("control: the user name, UTF-8", enc.encode(user));
  const counts = await scan(d.pid, needles);
  console.log([...counts].map(([k, v]) => `${k}: ${v}`).join("\n"));
  assert.ok(counts.get("control: the user name, UTF-8")! > 0, "the scan sees the daemon's strings");
  const found = [...counts].filter(([k, v]) => !k.startsWith("control") && v > 0);
  assert.deepEqual(found, [], "copies of a password in the daemon's memory");
});
