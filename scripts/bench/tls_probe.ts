// One fresh Deno process's TLS costs, for the bench (scripts/bench/tls_cost.ts runs it):
//   deno run ... tls_probe.ts HTTPS-URL CAFILE tls|rng
// tls: times two TLS connections in a row (connect, startTls, handshake), the way the helper
//      opens one (TCP_NODELAY, cafile= PEM as caCerts); prints {"first":MS,"second":MS}.
// rng: first makes AWS-LC (Deno's TLS crypto) seed its random generator through WebCrypto, then
//      the same; prints {"rng":MS,"first":MS,"second":MS}. The difference shows where the first
//      connection's extra time goes.
const [url, caFile, mode] = Deno.args;
const ca = Deno.readTextFileSync(caFile);
const { hostname, port } = new URL(url);

async function connection(): Promise<number> {
  const t0 = performance.now();
  const tcp = await Deno.connect({ hostname, port: Number(port) });
  tcp.setNoDelay(true);
  const tls = await Deno.startTls(tcp, { hostname, caCerts: [ca] });
  await tls.handshake();
  const ms = performance.now() - t0;
  tls.close();
  return ms;
}

const out: Record<string, number> = {};
if (mode === "rng") {
  const t0 = performance.now();
  // AES key generation draws from AWS-LC's generator (Deno's ext/crypto, aws_lc_rs SystemRandom).
  await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, false, ["encrypt"]);
  out.rng = performance.now() - t0;
}
out.first = await connection();
out.second = await connection();
console.log(JSON.stringify(out));
