// A pristine Debian root for the container test (container.ts): debootstrap --variant=minbase of
// the host's own suite with the packages the test needs, as a tarball.
//
// Made in 40 to 50 s, so it is kept between runs in CACHE_DIR (outside the repository), one
// tarball per suite, architecture, mirror and package list, for at most MAX_AGE (then made again,
// with the updates published meanwhile). The cache is used only while it is safe: the directory
// and the tarball must be root's alone (the tarball becomes a root file system that the test runs
// as root), and the tarball must match the SHA-256 written beside it when it was made (a tarball
// cut short, by a full disk or a killed run, is made again). A lock serialises concurrent runs.
import { createHash } from "node:crypto";
import { run } from "../../scripts/lib/run.ts";

export const CACHE_DIR = "/var/cache/pam_mapi-tests";
const MAX_AGE_MS = 7 * 24 * 3600 * 1000;
// Bump when the way the root is made changes, so that older tarballs are not used.
const FORMAT = 1;

export interface RootSpec {
  /** The Debian suite (the host's: "bookworm"), its mirror and the architecture. */
  suite: string;
  mirror: string;
  arch: string;
  /** Packages on top of minbase. */
  packages: string[];
}

/** Holds the cache's lock until disposed of: extract the tarball first. */
export interface Root extends Disposable {
  tarball: string;
  /** Whether it came from the cache, and how long getting it took. */
  cached: boolean;
  seconds: number;
}

function output(cmd: string, args: string[]): string {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

/**
 * The host's suite (VERSION_CODENAME in /etc/os-release), architecture and the mirror its apt
 * fetches that suite's main component from (or deb.debian.org); PAM_MAPI_TEST_MIRROR overrides the
 * mirror. Empty fields where the host is not Debian.
 */
export function hostSuite(): { suite: string; mirror: string; arch: string } {
  let suite = "";
  try {
    suite = /^VERSION_CODENAME=(\S+)$/m.exec(Deno.readTextFileSync("/etc/os-release"))?.[1] ?? "";
  } catch {
    // no os-release
  }
  const arch = output("dpkg", ["--print-architecture"]);
  const targets = output("apt-get", [
    "indextargets",
    "--format",
    "$(SITE) $(RELEASE) $(COMPONENT) $(IDENTIFIER)",
  ]).split("\n");
  const site = targets.map((l) => l.split(" "))
    .find(([, release, component, id]) =>
      release === suite && component === "main" &&
      id === "Packages"
    )?.[0];
  const mirror = Deno.env.get("PAM_MAPI_TEST_MIRROR") ?? site ?? "http://deb.debian.org/debian";
  return { suite, mirror: mirror.replace(/\/$/, ""), arch };
}

function keyOf(spec: RootSpec, debootstrap: string): string {
  const text = JSON.stringify({
    FORMAT,
    debootstrap,
    ...spec,
    packages: [...spec.packages].sort(),
  });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  using f = await Deno.open(path);
  for await (const chunk of f.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Why `path` is not root's alone (owned by root, writable by nobody else), or null. */
async function notRootsAlone(path: string): Promise<string | null> {
  const st = await Deno.lstat(path);
  if (st.isSymlink) return `${path} is a symbolic link`;
  if (st.uid !== 0) return `${path} is owned by uid ${st.uid}, not root`;
  if (st.mode! & 0o022) return `${path} is writable by group or others`;
  return null;
}

/** Whether the cached tarball can be used; removes it (and its checksum) when not. */
async function usable(tarball: string): Promise<boolean> {
  const sumFile = `${tarball}.sha256`;
  try {
    const [st, sum] = await Promise.all([Deno.lstat(tarball), Deno.readTextFile(sumFile)]);
    if (
      st.isFile && (await notRootsAlone(tarball)) === null &&
      (await notRootsAlone(sumFile)) === null &&
      Date.now() - st.mtime!.getTime() < MAX_AGE_MS && sum.trim() === (await sha256Of(tarball))
    ) return true;
  } catch {
    // missing
  }
  await Deno.remove(tarball).catch(() => {});
  await Deno.remove(sumFile).catch(() => {});
  return false;
}

async function make(spec: RootSpec, tarball: string): Promise<void> {
  const work = await Deno.makeTempDir({ dir: CACHE_DIR, prefix: "make_" });
  try {
    const root = `${work}/root`;
    const r = await run("debootstrap", [
      "--variant=minbase",
      `--arch=${spec.arch}`,
      `--include=${spec.packages.join(",")}`,
      spec.suite,
      root,
      spec.mirror,
    ]);
    if (r.code !== 0) {
      throw new Error(
        `debootstrap ${spec.suite} from ${spec.mirror} failed (${r.code}); it needs that ` +
          `mirror (PAM_MAPI_TEST_MIRROR names another):\n${(r.stdout + r.stderr).slice(-3000)}`,
      );
    }
    // The downloaded .debs are not needed: apt has them in its lists.
    for await (const e of Deno.readDir(`${root}/var/cache/apt/archives`)) {
      if (e.name.endsWith(".deb")) await Deno.remove(`${root}/var/cache/apt/archives/${e.name}`);
    }
    const t = await run("tar", [
      "-cf",
      `${work}/root.tar`,
      "--numeric-owner",
      "--xattrs",
      "--xattrs-include=*",
      "-C",
      root,
      ".",
    ]);
    if (t.code !== 0) throw new Error(`tar -c: ${t.stderr}`);
    await Deno.writeTextFile(`${work}/root.tar.sha256`, `${await sha256Of(`${work}/root.tar`)}\n`);
    await Deno.rename(`${work}/root.tar.sha256`, `${tarball}.sha256`);
    await Deno.rename(`${work}/root.tar`, tarball);
  } finally {
    await run("rm", ["-rf", "--one-file-system", work]);
  }
}

function tarballOf(spec: RootSpec): string {
  const key = keyOf(spec, output("debootstrap", ["--version"]));
  return `${CACHE_DIR}/debian-${spec.suite}-${spec.arch}-${key}.tar`;
}

/** Whether a tarball for `spec` is in the cache (debianRoot checks it before use). */
export function rootCached(spec: RootSpec): boolean {
  try {
    return Deno.statSync(tarballOf(spec)).isFile &&
      Deno.statSync(`${tarballOf(spec)}.sha256`).isFile;
  } catch {
    return false;
  }
}

/**
 * The tarball of a root made to `spec`: from the cache when it is there and sound, otherwise made
 * now (and cached, replacing older ones of the same suite and architecture).
 */
export async function debianRoot(spec: RootSpec): Promise<Root> {
  const start = performance.now();
  await Deno.mkdir(CACHE_DIR, { recursive: true, mode: 0o700 });
  const unsafe = await notRootsAlone(CACHE_DIR);
  if (unsafe) throw new Error(`the test's root cache cannot be trusted: ${unsafe}`);
  const lock = await Deno.open(`${CACHE_DIR}/.lock`, { create: true, write: true, mode: 0o600 });
  try {
    await lock.lock(true);
  } catch (e) {
    lock.close();
    throw e;
  }
  const prefix = `debian-${spec.suite}-${spec.arch}-`;
  const tarball = tarballOf(spec);
  let cached = true;
  try {
    if (!(await usable(tarball))) {
      cached = false;
      await make(spec, tarball);
      for await (const e of Deno.readDir(CACHE_DIR)) {
        const path = `${CACHE_DIR}/${e.name}`;
        if (e.name.startsWith(prefix) && !path.startsWith(tarball)) await Deno.remove(path);
      }
    }
  } catch (e) {
    lock.close();
    throw e;
  }
  return {
    tarball,
    cached,
    seconds: (performance.now() - start) / 1000,
    [Symbol.dispose]: () => lock.close(),
  };
}
