// What the bench reads from /proc: another process's CPU time, precisely, and its peak RSS; the
// load average.

/**
 * CPU time of a process, from each thread's scheduler statistics (/proc/PID/task/TID/schedstat,
 * nanoseconds): /proc/PID/stat counts whole 10 ms ticks, too coarse for a resident helper that
 * spends well under a millisecond per login. A thread that ends (Deno's idle tokio workers do)
 * keeps the time last seen for it, so the figure never goes back; what it used after that last
 * look is missed, which only ever understates.
 */
export class CpuMeter {
  #last = new Map<string, number>();

  constructor(private pid: number) {
    this.ms();
  }

  /** CPU milliseconds used so far (since the first look for threads that ended). */
  ms(): number {
    const dir = `/proc/${this.pid}/task`;
    let tasks: string[] = [];
    try {
      tasks = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch { /* the process is gone: what was seen stays */ }
    for (const t of tasks) {
      try {
        const ns = Number(Deno.readTextFileSync(`${dir}/${t}/schedstat`).split(" ")[0]);
        if (Number.isFinite(ns)) this.#last.set(t, ns);
      } catch { /* the thread ended meanwhile */ }
    }
    let ns = 0;
    for (const v of this.#last.values()) ns += v;
    return ns / 1e6;
  }
}

/** The largest RSS the process has had (VmHWM), KiB. */
export function peakRssKb(pid: number): number {
  const st = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(st)?.[1] ?? NaN);
}

/** The load averages over 1, 5 and 15 minutes. */
export async function loadAvg(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
}
