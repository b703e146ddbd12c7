// Starts a sim listening on TCP, TLS and a UNIX socket at once (port 0, a temp dir), so that a
// test can run the same exchange over every transport.

import { type KopanoSim, type KopanoSimOptions, startKopanoSim } from "../../kopano_sim/mod.ts";
import { makeTestPki, type TestPki } from "../../lib/pki.ts";
import { type Target, targetOf } from "./raw_http.ts";

export const TRANSPORTS = ["tcp", "tls", "unix"] as const;
export type TransportName = typeof TRANSPORTS[number];

let pki: Promise<TestPki> | null = null;

/** One throw-away PKI per test process (removed when the process ends). */
export function testPki(): Promise<TestPki> {
  if (!pki) {
    pki = makeTestPki();
    pki.then((p) => {
      globalThis.addEventListener("unload", () => {
        try {
          Deno.removeSync(p.dir, { recursive: true });
        } catch {
          // already gone
        }
      });
    });
  }
  return pki;
}

export interface SimEnv {
  sim: KopanoSim;
  dir: string;
  target: Record<TransportName, Target>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function simEnv(opts: KopanoSimOptions = {}): Promise<SimEnv> {
  const p = await testPki();
  const dir = await Deno.makeTempDir({ prefix: "sim_test_" });
  const sim = await startKopanoSim({
    listen: ["127.0.0.1:0"],
    tls: { listen: "127.0.0.1:0", certFile: p.certFile, keyFile: p.keyFile },
    unix: `${dir}/server.sock`,
    ...opts,
  });
  const ca = await Deno.readTextFile(p.caFile);
  return {
    sim,
    dir,
    target: {
      tcp: targetOf(sim.urls.http[0]),
      tls: targetOf(sim.urls.https[0], [ca]),
      unix: targetOf(sim.urls.unix[0]),
    },
    async [Symbol.asyncDispose]() {
      await sim.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
