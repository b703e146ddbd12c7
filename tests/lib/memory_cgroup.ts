// A memory limit for one process tree, the way systemd's MemoryMax= sets one: a child of our own
// cgroup v1 memory controller group with memory.limit_in_bytes. A process started through `wrap`
// joins it before it execs, so everything it ever allocates is charged there; past the limit the
// kernel's OOM killer ends it. Removed (and checked empty) at dispose.

const ROOT = "/sys/fs/cgroup/memory";

export interface MemoryCgroup extends AsyncDisposable {
  path: string;
  /** Prefix for a command: joins the group, then execs the rest. */
  wrap: string[];
  /** The most memory the group was charged at once (memory.max_usage_in_bytes). */
  maxUsageBytes(): number;
  /** Starts the peak over from what the group is charged now. */
  resetMaxUsage(): void;
  /** Processes of the group the OOM killer ended (memory.oom_control's oom_kill). */
  oomKills(): number;
}

/** Whether this machine offers a writable cgroup v1 memory controller. */
export function memoryCgroupAvailable(): boolean {
  try {
    return Deno.statSync(`${ROOT}/memory.limit_in_bytes`).isFile && ownGroup() !== null;
  } catch {
    return false;
  }
}

function ownGroup(): string | null {
  const line = Deno.readTextFileSync("/proc/self/cgroup").split("\n")
    .find((l) => /^\d+:memory:/.test(l));
  return line ? `${ROOT}${line.slice(line.indexOf(":memory:") + 8)}`.replace(/\/$/, "") : null;
}

export function makeMemoryCgroup(limitBytes: number, name = "pam_mapi_test"): MemoryCgroup {
  const parent = ownGroup();
  if (parent === null) throw new Error("no cgroup v1 memory controller here");
  const path = `${parent}/${name}_${Deno.pid}_${Math.random().toString(36).slice(2, 8)}`;
  Deno.mkdirSync(path);
  try {
    Deno.writeTextFileSync(`${path}/memory.limit_in_bytes`, String(limitBytes));
    // No swap here; where there is, swapping instead of the OOM kill would hide the limit.
    try {
      Deno.writeTextFileSync(`${path}/memory.swappiness`, "0");
    } catch { /* not offered */ }
  } catch (e) {
    Deno.removeSync(path);
    throw e;
  }
  const read = (f: string) => Deno.readTextFileSync(`${path}/${f}`);
  return {
    path,
    wrap: ["/bin/sh", "-c", `echo $$ > ${path}/cgroup.procs && exec "$@"`, "sh"],
    maxUsageBytes: () => Number(read("memory.max_usage_in_bytes").trim()),
    resetMaxUsage: () => Deno.writeTextFileSync(`${path}/memory.max_usage_in_bytes`, "0"),
    oomKills: () => Number(/^oom_kill (\d+)/m.exec(read("memory.oom_control"))?.[1] ?? 0),
    async [Symbol.asyncDispose]() {
      // The processes are gone (the caller stopped them); the kernel may take a moment to let go.
      for (let i = 0;; i++) {
        const left = read("cgroup.procs").trim();
        if (left === "") break;
        if (i === 50) throw new Error(`cgroup ${path} still holds processes: ${left}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      for (let i = 0;; i++) {
        try {
          Deno.removeSync(path);
          return;
        } catch (e) {
          if (i === 50) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
}
