// The fork path's latency from the installed package against the build tree's, measured in the
// same run and in the same place: both in the container, through pam_bench (whole PAM
// transactions, daemon=off) against the same Kopano-compatible server, one login of each side in
// turn, so that the machine's load falls on both alike and only the package differs. The build tree's side is set up as deno task bench sets up its fork row
// (scripts/bench/workspace.ts): a copy of the built module and helper in a root-owned directory,
// the bundle's launcher built again for that directory, with a fresh code cache there, as
// /var/cache/pam_mapi is after an installation.
import { median, percentile } from "../../scripts/bench/stats.ts";
import { buildLauncher, launcherInfo, pamBundlePath } from "../../scripts/lib/helper_build.ts";
import type { Container } from "./container.ts";
import { pamBench, pamService } from "./in_container.ts";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
/** Where the build tree's copy goes in the container. */
const TREE = "/opt/build-tree";

/**
 * Copies dist/ into the container (with the Deno runtime the launcher runs, when the helper is the
 * bundle) and names it in the pam.d service "fork-tree"; returns a function that removes it.
 */
async function copyBuildTree(c: Container, url: string): Promise<() => Promise<void>> {
  const dir = `${c.root}${TREE}`;
  await Deno.mkdir(dir, { mode: 0o755 });
  const info = await launcherInfo(`${ROOT}/dist/pam_mapi_helper`);
  if (info) {
    await Deno.copyFile(info.bundle, `${dir}/pam_mapi_helper.js`);
    await Deno.copyFile(info.pam_bundle, pamBundlePath(`${dir}/pam_mapi_helper.js`));
    await Deno.copyFile(info.deno, `${dir}/deno`);
    await buildLauncher(ROOT, `${dir}/pam_mapi_helper`, {
      deno: `${TREE}/deno`,
      bundle: `${TREE}/pam_mapi_helper.js`,
      cache: `${TREE}/cache`,
    });
  } else {
    await Deno.copyFile(`${ROOT}/dist/pam_mapi_helper`, `${dir}/pam_mapi_helper`); // compiled
  }
  await Deno.copyFile(`${ROOT}/dist/pam_mapi.so`, `${dir}/pam_mapi.so`);
  for (const f of ["pam_mapi.so", "pam_mapi_helper", "deno"]) {
    await Deno.chmod(`${dir}/${f}`, 0o755).catch(() => {}); // (no deno for a compiled helper)
  }
  await pamService(c, "fork-tree", [
    `auth required ${TREE}/pam_mapi.so helper=${TREE}/pam_mapi_helper daemon=off socket=${url}`,
  ]);
  return async () => {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(`${c.root}/etc/pam.d/fork-tree`);
  };
}

export interface ForkTiming {
  /** p50, p25 and p75 of each side's logins, in ms. */
  installed: { p50: number; p25: number; p75: number };
  buildTree: { p50: number; p25: number; p75: number };
  /** installed p50 / build tree p50, over all logins, and over each half of the rounds */
  ratio: number;
  halves: [number, number];
  logins: number;
}

/**
 * `rounds` rounds, each one login on each side (alice, right password), the side that goes first
 * alternating, so that a burst of load falls on both alike; `warmup` logins on each side first (the
 * first fill each side's code cache). pam_bench must be in the container (installPamBench).
 */
export async function compareForkedP50(
  c: Container,
  url: string,
  o = { rounds: 100, warmup: 3 },
): Promise<ForkTiming> {
  await pamService(c, "fork", [`auth required pam_mapi.so daemon=off socket=${url}`]);
  const removeTree = await copyBuildTree(c, url);
  try {
    const once = async (service: string, warmup = 0) => {
      const run = await pamBench(c, service, "alice", "secret", [
        "--count",
        "1",
        "--warmup",
        String(warmup),
      ]);
      const bad = [...run.results].filter(([k]) => k !== "PAM_SUCCESS");
      if (bad.length) throw new Error(`forked logins failed: ${JSON.stringify(bad)}`);
      return run.latUs[0] / 1000;
    };
    await once("fork", o.warmup);
    await once("fork-tree", o.warmup);
    const installed: number[] = [];
    const buildTree: number[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const first = r % 2 ? await once("fork-tree") : null;
      installed.push(await once("fork"));
      buildTree.push(first ?? await once("fork-tree"));
    }
    const quartiles = (v: number[]) => ({
      p50: median(v),
      p25: percentile(v, 25),
      p75: percentile(v, 75),
    });
    const ratio = (a: number[], b: number[]) => median(a) / median(b);
    const half = (v: number[], odd: number) => v.filter((_, i) => i % 2 === odd);
    return {
      installed: quartiles(installed),
      buildTree: quartiles(buildTree),
      ratio: ratio(installed, buildTree),
      halves: [
        ratio(half(installed, 0), half(buildTree, 0)),
        ratio(half(installed, 1), half(buildTree, 1)),
      ],
      logins: o.rounds,
    };
  } finally {
    await removeTree();
  }
}
