// One fresh Deno process's TLS costs, for the bench (scripts/bench/tls_cost.ts runs it):
//   deno run ... tls_probe.ts HTTPS-URL CAFILE tls|rng
// tls: times two TLS connections in a row (connect, startTls, handshake), the way the helper
//      opens one (TCP_NODELAY, cafile= PEM as caCerts); prints
//      {"first":MS,"second":MS,"firstCpu":MS,"secondCpu":MS} (wall clock, and this process's CPU).
// rng: first makes AWS-LC (Deno's TLS crypto) seed its random generator through WebCrypto, then
//      the same; adds "rng":MS. The difference shows where the first connection's extra time goes.
import process from "node:process";

const [url, caFile, mode] = Deno.args;
const ca = Deno.readTextFileSync(caFile);
const { hostname, port } = new URL(url);

/** Wall-clock and CPU milliseconds of `fn`. */
async function measure(fn: () => Promise<void>): Promise<[number, number]> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const cpu = process.cpuUsage(cpu0);
  return [performance.now() - t0, (cpu.user + cpu.system) / 1000];
}

async function connection(): Promise<void> {
  const tcp = await Deno.connect({ hostname, port: Number(port) });
  tcp.setNoDelay(true);
  const tls = await Deno.startTls(tcp, { hostname, caCerts: [ca] });
  await tls.handshake();
  tls.close();
}

const out: Record<string, number> = {};
if (mode === "rng") {
  // AES key generation draws from AWS-LC's generator (Deno's ext/crypto, aws_lc_rs SystemRandom).
  [out.rng] = await measure(async () => {
    await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, false, ["encrypt"]);
  });
}
[out.first, out.firstCpu] = await measure(connection);
[out.second, out.secondCpu] = await measure(connection);
console.log(JSON.stringify(out));
