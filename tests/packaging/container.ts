// A Debian root booted with its own systemd as PID 1 in a systemd-nspawn container, for the tests
// of the installed package under a real systemd (systemd_container_test.ts).
//
// What these machines need (docs/admin-guide.md, "Under systemd"): no systemd on the host, so no
// machined (--register=no) and no unit to put the container in (--keep-unit); nspawn would then
// create /payload and /supervisor at the top of the host's cgroup hierarchies, fixed names that
// outlive it, so the supervisor below first moves itself into a cgroup of its own in every
// hierarchy nspawn and the container's systemd write to, and removes those afterwards. nspawn
// mounts the cgroup v1 controllers read-only inside, which leaves MemoryMax= unenforced: the
// container's PID 1 is first a shell that remounts the memory hierarchy (rooted at the
// container's own cgroup) read-write, then execs systemd. The container shares the host's network
// and user IDs; commands run in it through nsenter with a clean environment.
//
// The supervisor (a shell between this process and nspawn) powers the container off when its
// standard input closes: when the test closes it, and also when the test dies. It then removes the
// cgroups and the container's directory, so that nothing is left behind either way.
import { run, type RunResult } from "../../scripts/lib/run.ts";

const PID1 = "if [ -d /sys/fs/cgroup/memory ]; then " +
  "mount -o remount,bind,rw /sys/fs/cgroup/memory || exit 1; fi; exec /lib/systemd/systemd";

// $1 = the container's directory (removed at the end), then nspawn's arguments. CGROUPS: the
// cgroup directories made for it, one per hierarchy; NSPAWN_RUN_NEW: set when /run/systemd/nspawn
// did not exist before. Writes nspawn's pid to DIR/nspawn.pid and its output (the container's
// console) to DIR/console.log, whose end it prints before it removes DIR.
const SUPERVISOR = `
dir=$1; shift
log=$dir/console.log
exec 3<&0 2>>"$log"
for d in $CGROUPS; do echo $$ > "$d/cgroup.procs"; done
systemd-nspawn "$@" </dev/null >>"$log" 2>&1 3<&- &
ns=$!
echo "$ns" > "$dir/nspawn.pid"
# (a background job's own standard input would be /dev/null)
( read -r _ <&3; kill -TERM "$ns" 2>/dev/null ) &
watcher=$!
wait "$ns"; rc=$?
kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
for d in $CGROUPS; do
  echo $$ > "\${d%/*}/cgroup.procs"
  find "$d" -depth -type d -exec rmdir {} \\;
done
# nspawn's lock and propagation directories (and any other a newer nspawn makes), when they were
# made for this container (rmdir leaves them to another container that uses them now)
if [ -n "$NSPAWN_RUN_NEW" ]; then
  find /run/systemd/nspawn -depth -type d -exec rmdir {} \\; 2>/dev/null
fi
tail -n 40 "$log"
rm -rf --one-file-system "$dir"
exit $rc
`;

const CLEAN_ENV = [
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "LANG=C.UTF-8",
];

export interface Bind {
  /** A directory on the host... */
  host: string;
  /** ... and where the container sees it. */
  inside: string;
}

export interface ContainerOptions {
  /** A tarball of a Debian root with systemd (debian_root.ts). */
  tarball: string;
  binds?: Bind[];
  /** Files to write into the root before it boots: path -> content. */
  files?: Record<string, string>;
  hostname?: string;
}

/** Where a process is in each cgroup hierarchy that nspawn and the container's systemd write. */
function cgroupParents(): string[] {
  const mounts = new Map<string, string>(); // "unified" | "name=systemd" | "memory" -> mount point
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!post) continue;
    const [fstype, , superOpts] = post.split(" ");
    const point = pre.split(" ")[4];
    if (fstype === "cgroup2") mounts.set("unified", point);
    if (fstype !== "cgroup") continue;
    for (const o of superOpts.split(",")) {
      if (o === "memory" || o === "name=systemd") mounts.set(o, point);
    }
  }
  const out: string[] = [];
  for (const line of Deno.readTextFileSync("/proc/self/cgroup").trim().split("\n")) {
    const [, controllers, path] = line.split(":");
    const key = controllers === "" ? "unified" : controllers.split(",").find((c) => mounts.has(c));
    const point = key && mounts.get(key);
    if (point) out.push(`${point}${path === "/" ? "" : path}`);
  }
  return out;
}

async function waitUntil(check: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Container implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #closed: Promise<{ code: number; console: string }> | null = null;
  /** What the supervisor prints when it ends: the console's last lines. */
  #lastWords: Promise<string>;

  private constructor(
    /** The container's directory on the host (its root is DIR/root), gone after poweroff. */
    readonly dir: string,
    /** The machine name nspawn was given. */
    readonly name: string,
    /** The cgroup directories made for it (gone after poweroff). */
    readonly cgroups: string[],
    child: Deno.ChildProcess,
    /** systemd-nspawn's pid, and the container's PID 1 as the host sees it. */
    readonly nspawnPid: number,
    readonly leader: number,
    /** The container's PID namespace ("pid:[inode]"), to find its processes. */
    readonly pidNamespace: string,
    /** Whether nspawn made /run/systemd/nspawn for it (removed again after poweroff). */
    readonly nspawnRunDirNew: boolean,
    lastWords: Promise<string>,
  ) {
    this.#child = child;
    this.#lastWords = lastWords;
  }

  /** The container's root directory on the host (its tmpfs mounts, such as /run, are not here:
   * see hostPath). */
  get root(): string {
    return `${this.dir}/root`;
  }

  /** The console output so far (systemd's boot messages). */
  console(): Promise<string> {
    return Deno.readTextFile(`${this.dir}/console.log`).catch(() => "");
  }

  /**
   * Extracts the tarball, boots it and waits until its systemd has finished starting up
   * (`systemctl is-system-running --wait`). Needs root, systemd-nspawn and nsenter.
   */
  static async boot(o: ContainerOptions): Promise<Container> {
    const dir = await Deno.makeTempDir({ prefix: "pam_mapi_container_" });
    const nspawnRunDirNew = await Deno.lstat("/run/systemd/nspawn").then(() => false, () => true);
    const name = dir.slice(dir.lastIndexOf("/") + 1).replaceAll("_", "-");
    const cgroups: string[] = [];
    let child: Deno.ChildProcess | null = null;
    let c: Container | null = null;
    try {
      await Deno.mkdir(`${dir}/root`);
      const x = await run("tar", [
        "-xpf",
        o.tarball,
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=*",
        "-C",
        `${dir}/root`,
      ]);
      if (x.code !== 0) throw new Error(`tar -x ${o.tarball}: ${x.stderr}`);
      // debootstrap writes no /etc/hosts: without one, localhost does not resolve.
      await Deno.writeTextFile(
        `${dir}/root/etc/hosts`,
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
      );
      await Deno.writeTextFile(`${dir}/root/etc/hostname`, `${o.hostname ?? "pam-mapi-test"}\n`);
      for (const [path, text] of Object.entries(o.files ?? {})) {
        await Deno.mkdir(`${dir}/root${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
        await Deno.writeTextFile(`${dir}/root${path}`, text);
      }
      for (const parent of cgroupParents()) {
        const cg = `${parent}/${name}`;
        await Deno.mkdir(cg);
        cgroups.push(cg);
      }
      const args = [
        "-q",
        `--directory=${dir}/root`,
        `--machine=${name}`,
        "--register=no",
        "--keep-unit",
        "--kill-signal=SIGRTMIN+3", // a clean poweroff when nspawn is told to stop
        "--console=read-only",
        ...(o.binds ?? []).map((b) => `--bind=${b.host}:${b.inside}`),
        "/bin/sh",
        "-c",
        PID1,
      ];
      child = new Deno.Command("sh", {
        args: ["-c", SUPERVISOR, "sh", dir, ...args],
        env: { CGROUPS: cgroups.join(" "), NSPAWN_RUN_NEW: nspawnRunDirNew ? "1" : "" },
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const lastWords = new Response(child.stdout).text();
      const exited = child.status.then((s) => s.code);
      let nspawnPid = 0;
      let leader = 0;
      let pidNamespace = "";
      const ours = await Deno.readLink("/proc/self/ns/pid");
      await waitUntil(
        async () => {
          if (await Promise.race([exited, Promise.resolve(null)]) !== null) {
            throw new Error(`systemd-nspawn ended at once:\n${await lastWords}`);
          }
          nspawnPid ||= Number(await Deno.readTextFile(`${dir}/nspawn.pid`).catch(() => "0"));
          if (!nspawnPid) return false;
          const kids = await Deno.readTextFile(`/proc/${nspawnPid}/task/${nspawnPid}/children`)
            .catch(() => "");
          for (const k of kids.trim().split(/\s+/).filter(Boolean).map(Number)) {
            const ns = await Deno.readLink(`/proc/${k}/ns/pid`).catch(() => ours);
            const comm = (await Deno.readTextFile(`/proc/${k}/comm`).catch(() => "")).trim();
            if (ns !== ours && comm === "systemd") [leader, pidNamespace] = [k, ns];
          }
          return leader !== 0;
        },
        "the container's systemd to start",
        30_000,
      );
      const booted = new Container(
        dir,
        name,
        cgroups,
        child,
        nspawnPid,
        leader,
        pidNamespace,
        nspawnRunDirNew,
        lastWords,
      );
      c = booted;
      // systemctl cannot connect until systemd has made its private socket, and says "offline"
      // until systemd has made /run/systemd/system (sd_booted): PID 1 is named systemd from its
      // exec on, a moment before either.
      let up = await booted.run("timeout", ["120", "systemctl", "is-system-running", "--wait"]);
      const reached = waitUntil(
        async () => {
          if (
            !/Failed to connect to (system scope )?bus/.test(up.stderr) &&
            up.stdout.trim() !== "offline"
          ) {
            return true;
          }
          up = await booted.run("timeout", ["120", "systemctl", "is-system-running", "--wait"]);
          return false;
        },
        "systemctl to reach the container's systemd",
        30_000,
      );
      // What systemctl last said, and the container's console, are what tell why.
      await reached.catch(async (e) => {
        throw new Error(`${e.message}: ${up.stdout}${up.stderr}\n${await booted.console()}`);
      });
      if (!/^(running|degraded)$/.test(up.stdout.trim())) {
        throw new Error(`the container did not start: ${up.stdout}${up.stderr}\n${await booted
          .console()}`);
      }
      return booted;
    } catch (e) {
      if (c) {
        await c.poweroff();
      } else if (child) {
        await child.stdin.close().catch(() => {});
        await child.status;
      } else {
        for (const cg of cgroups.reverse()) await Deno.remove(cg).catch(() => {});
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
      throw e;
    }
  }

  /**
   * Runs a command inside the container (all its namespaces, and its root directory) with a clean
   * environment. The root must be named: entering a mount namespace sets the root to that
   * namespace's own, which is the container's only when nspawn was started at the machine's root;
   * started in a chroot (scripts/fresh-root-check.sh), it is the machine's.
   */
  run(
    cmd: string,
    args: string[],
    options: { stdin?: string; env?: Record<string, string> } = {},
  ): Promise<RunResult> {
    const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
    return run("nsenter", [
      `--target=${this.leader}`,
      "--all",
      "--root",
      "--wd",
      "--",
      "/usr/bin/env",
      "-i",
      ...CLEAN_ENV,
      ...env,
      cmd,
      ...args,
    ], { stdin: options.stdin });
  }

  /** Like run(), but throws with the output unless the command exits 0; returns its stdout. */
  async ok(cmd: string, args: string[], options: { stdin?: string } = {}): Promise<string> {
    const r = await this.run(cmd, args, options);
    if (r.code !== 0) {
      throw new Error(
        `in the container: ${cmd} ${args.join(" ")} exited ${r.code}\n` +
          `${r.stdout}${r.stderr}`,
      );
    }
    return r.stdout;
  }

  /**
   * A path in the container as a host process can reach it, tmpfs mounts included (such as the
   * daemon's socket, /run/pam_mapi/helper.sock): through /proc/LEADER/root. A host process that
   * connects there is, for the container's daemon, root.
   */
  hostPath(path: string): string {
    return `/proc/${this.leader}/root${path}`;
  }

  /**
   * Powers the container off (`systemctl poweroff`, systemd's clean shutdown) and waits until the
   * supervisor has removed its cgroups and directory; returns nspawn's exit status (0 after a
   * clean poweroff) and the console's last lines. Should the container not go down within a
   * minute, nspawn is told to stop it, then killed.
   */
  poweroff(): Promise<{ code: number; console: string }> {
    this.#closed ??= (async () => {
      const ended = async (ms: number) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms));
        const done = await Promise.race([this.#child.status.then(() => true), late]);
        clearTimeout(timer);
        return done;
      };
      const asked = await this.run("systemctl", ["poweroff", "--no-block"]);
      let clean = asked.code === 0 && await ended(60_000);
      await this.#child.stdin.close().catch(() => {}); // the supervisor: stop nspawn, clean up
      if (!clean) clean = await ended(30_000);
      if (!clean) {
        for (const pid of [this.leader, this.nspawnPid]) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch {
            // gone
          }
        }
      }
      const status = await this.#child.status;
      const text = await this.#lastWords;
      return { code: status.code, console: text };
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.poweroff();
  }
}

/** What a container may have left on the host: its directory, cgroups, mounts, processes. */
export async function leftoversOf(c: Container): Promise<string[]> {
  const left: string[] = [];
  const nspawnRun = c.nspawnRunDirNew ? ["/run/systemd/nspawn"] : [];
  for (const p of [c.dir, ...c.cgroups, ...nspawnRun]) {
    if (await Deno.lstat(p).then(() => true, () => false)) left.push(p);
  }
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const ns = await Deno.readLink(`/proc/${e.name}/ns/pid`).catch(() => "");
    const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() => "");
    if (ns === c.pidNamespace || cmd.includes(c.name)) left.push(`process ${e.name}: ${cmd}`);
  }
  const mounts = await Deno.readTextFile("/proc/self/mountinfo");
  for (const line of mounts.split("\n")) if (line.includes(c.dir)) left.push(`mount ${line}`);
  return left;
}
