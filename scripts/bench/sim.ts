// The Kopano-compatible server for the bench, as a process of its own (`deno task kopano-sim`'s
// program) so that it does not share an event loop with the bench. Its --verbose log (one line per
// request) is read to count the SOAP calls each phase made, and over which transport.
import { CpuMeter } from "./proc.ts";

export interface SimProcess extends AsyncDisposable {
  url: string;
  /** The TLS listener's URL, when started with a certificate. */
  httpsUrl: string | null;
  /** CPU time the server process has used so far, milliseconds (proc.ts CpuMeter). */
  cpuMs(): number;
  /** Requests per SOAP method ("logon", "getUser", "logoff", ...) since the start. */
  counts(): Map<string, number>;
  /** Requests per transport ("tcp", "tls") since the start. */
  transports(): Map<string, number>;
  /** Returns once every request answered so far is counted (a marker request went through). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Starts the sim on 127.0.0.1, with a TLS listener too when given its certificate and key. */
export async function startSim(tls?: { certFile: string; keyFile: string }): Promise<SimProcess> {
  const tlsArgs = tls
    ? ["--tls-listen", "127.0.0.1:0", "--cert", tls.certFile, "--key", tls.keyFile]
    : [];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-lock",
      `${ROOT}/tests/kopano_sim/main.ts`,
      "--listen",
      "127.0.0.1:0",
      ...tlsArgs,
      "--verbose",
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const counts = new Map<string, number>();
  const transports = new Map<string, number>();
  let marks = 0;
  const waiting: { mark: number; resolve: () => void }[] = [];
  let errText = "";

  // stderr: "#SEQ TRANSPORT conn N: POST METHOD" per request; anything else is kept for errors.
  const pump = (async () => {
    const lines = child.stderr.pipeThrough(new TextDecoderStream());
    let rest = "";
    for await (const chunk of lines) {
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        const m = /^#\d+ (\S+) conn \d+: \S+ (\S+)$/.exec(line);
        if (m?.[2].startsWith("benchSync")) {
          marks = Number(m[2].slice("benchSync".length));
          for (const w of waiting) if (marks >= w.mark) w.resolve();
        } else if (m) {
          counts.set(m[2], (counts.get(m[2]) ?? 0) + 1);
          transports.set(m[1], (transports.get(m[1]) ?? 0) + 1);
        } else if (errText.length < 4000) errText += line + "\n";
      }
    }
  })();

  // stdout: "listening URL", one line per listener.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  let url: string | null = null;
  let httpsUrl: string | null = null;
  while (url === null || (tls && httpsUrl === null)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
    url = /listening (http:\/\/\S+)/.exec(out)?.[1] ?? null;
    httpsUrl = /listening (https:\/\/\S+)/.exec(out)?.[1] ?? null;
  }
  clearTimeout(timer);
  if (url === null || (tls && httpsUrl === null)) {
    await child.status;
    await pump;
    throw new Error(`kopano-sim did not start:\n${out}${errText}`);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await pump;
  };
  const cpu = new CpuMeter(child.pid);
  return {
    url,
    httpsUrl,
    cpuMs: () => cpu.ms(),
    counts: () => new Map(counts),
    transports: () => new Map(transports),
    async sync() {
      // The sim logs a request before answering it, so once the marker is logged, every request
      // answered before it was sent is counted. The marker itself is an unknown method (a fault).
      const mark = marks + 1;
      const logged = new Promise<void>((resolve) => waiting.push({ mark, resolve }));
      const body = `<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV=` +
        `"http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns="urn:zarafa"><SOAP-ENV:Body>` +
        `<ns:benchSync${mark}/></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
      const r = await fetch(url!, {
        method: "POST",
        body,
        headers: { "content-type": "text/xml" },
      });
      await r.body?.cancel();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("kopano-sim's request log stopped")), 5000);
      });
      try {
        await Promise.race([logged, timeout]);
      } finally {
        clearTimeout(timer);
        waiting.length = 0;
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Requests per method between two snapshots of counts(). */
export function diff(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const d = new Map<string, number>();
  for (const [k, v] of after) {
    const n = v - (before.get(k) ?? 0);
    if (n) d.set(k, n);
  }
  return d;
}
