// Command line of the Kopano-compatible test server: `deno task kopano-sim --help`.
// Prints one "listening URL" line per listener, then serves until SIGINT/SIGTERM.

import { parseArgs } from "node:util";
import { type Fault, parseFaultSpec, startKopanoSim, type UnixPeer, validateUsers } from "./mod.ts";

const HELP = `Usage: deno task kopano-sim [OPTIONS]
A Kopano/Zarafa storage server stand-in for tests (SOAP over HTTP, TLS and a UNIX socket).

Listeners (default: --listen 127.0.0.1:0 when none is given; port 0 picks a free port):
  --listen HOST:PORT          plain HTTP (repeatable), e.g. 127.0.0.1:236, [::1]:0
  --unix PATH                 UNIX socket (mode 0666; an old socket there is replaced)
  --tls-listen HOST:PORT      HTTPS, with --cert FILE --key FILE (PEM)
Server:
  --users FILE                JSON array of {"name","password","enabled":[..],"disabled":[..],
                              "admin":bool,"active":bool} (default: alice/secret, bob/bobpass
                              with imap enabled and pop3 disabled, kadmin/adminpass admin)
  --disabled-features "A B"   server option disabled_features (default "imap pop3")
  --version X.Y.Z[.REV]       emulated server version (default 11.0.2; e.g. 8.7.0, 7.1.11, 7.1.0)
  --unix-peer WHO             who UNIX-socket clients are assumed to be (no SO_PEERCRED in Deno):
                              admin (default; root/local_admin_users: logon without password
                              unless ulFlags has NO_UID_AUTH), user (password always checked),
                              local:NAME (the Unix account NAME: only Kopano user NAME)
  --unix-origin connection|socket
                              UNIX session binding: per connection (default) or shared
  --session-timeout SECONDS   session_timeout (default 300)
  --idle-timeout SECONDS      close idle TCP/TLS keep-alive connections (default 5)
  --read-timeout SECONDS      time to receive one request (default 60)
  --max-body BYTES            close connections sending larger bodies (default 4194304)
Testing:
  --fault KIND[=VALUE][@METHOD][*TIMES][+TRANSPORT]   (repeatable)
        delay=MS  hang  drop  close-mid-reply  garbage  oversized[=BYTES]  http-500  http-503
        wrong-content-type[=TYPE]  raw=FILE (verbatim reply bytes)  reset  refuse
        close-reused (close a kept-alive connection, no reply, as its next request arrives)
        e.g. --fault delay=500@getUser*1   --fault reset+unix
  --verbose                   one line per request on stderr
  --help                      this text

Output: one "listening URL" line per listener (http://H:P/kopano, https://H:P/kopano,
file:///PATH). Stops cleanly on SIGINT or SIGTERM.
`;

function usage(message: string): never {
  console.error(`kopano-sim: ${message}\n(try --help)`);
  Deno.exit(2);
}

function seconds(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) usage(`--${name} needs a positive number of seconds`);
  return Math.round(n * 1000);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: "string", multiple: true },
        unix: { type: "string" },
        "tls-listen": { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        users: { type: "string" },
        "disabled-features": { type: "string" },
        version: { type: "string" },
        "unix-peer": { type: "string" },
        "unix-origin": { type: "string" },
        "session-timeout": { type: "string" },
        "idle-timeout": { type: "string" },
        "read-timeout": { type: "string" },
        "max-body": { type: "string" },
        fault: { type: "string", multiple: true },
        verbose: { type: "boolean" },
        help: { type: "boolean" },
      },
    });
  } catch (e) {
    usage((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(HELP);
    return;
  }
  const tlsGiven = [v["tls-listen"], v.cert, v.key].filter((x) => x !== undefined).length;
  if (tlsGiven !== 0 && tlsGiven !== 3) usage("--tls-listen, --cert and --key go together");
  const origin = v["unix-origin"];
  if (origin !== undefined && origin !== "connection" && origin !== "socket") {
    usage("--unix-origin is connection or socket");
  }
  let maxBody: number | undefined;
  if (v["max-body"] !== undefined) {
    maxBody = Number(v["max-body"]);
    if (!Number.isInteger(maxBody) || maxBody <= 0) usage("--max-body needs a positive integer");
  }

  let users;
  const faults: Fault[] = [];
  try {
    if (v.users !== undefined) users = validateUsers(JSON.parse(await Deno.readTextFile(v.users)));
    for (const spec of v.fault ?? []) {
      const f = parseFaultSpec(spec);
      if (f.kind === "raw") f.reply = { bytes: await Deno.readFile(f.value as string) };
      faults.push(f);
    }
  } catch (e) {
    usage((e as Error).message);
  }

  let sim;
  try {
    sim = await startKopanoSim({
      listen: v.listen,
      unix: v.unix,
      tls: tlsGiven ? { listen: v["tls-listen"]!, certFile: v.cert!, keyFile: v.key! } : undefined,
      users,
      disabledFeatures: v["disabled-features"],
      version: v.version,
      unixPeer: v["unix-peer"] as UnixPeer | undefined,
      unixOrigin: origin as "connection" | "socket" | undefined,
      sessionTimeoutMs: seconds("session-timeout", v["session-timeout"]),
      idleTimeoutMs: seconds("idle-timeout", v["idle-timeout"]),
      readTimeoutMs: seconds("read-timeout", v["read-timeout"]),
      maxBodyBytes: maxBody,
      faults,
      log: v.verbose ? (line) => console.error(line) : undefined,
    });
  } catch (e) {
    console.error(`kopano-sim: ${(e as Error).message}`);
    Deno.exit(1);
  }
  const urls = sim.urls;
  for (const u of [...urls.http, ...urls.https, ...urls.unix]) console.log(`listening ${u}`);

  const { promise: stopped, resolve: stop } = Promise.withResolvers<void>();
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => stop());
  await stopped;
  await sim.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
