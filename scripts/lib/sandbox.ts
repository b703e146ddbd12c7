// A sandbox for running real PAM applications (pamtester, saslauthd, Postfix) against PAM files of
// our own, as root, without changing the machine. Used by `deno task demo` and tests/e2e.
//
// `unshare` gives it a private mount namespace and a private PID namespace. Inside, a temp
// directory's pam.d is bind-mounted over /etc/pam.d (plus any other files asked for), and /dev
// becomes an overlay on which sandbox_init.py, the namespace's PID 1, owns /dev/log and writes
// every syslog line to DIR/syslog. Commands run inside with `nsenter`. When the sandbox is closed,
// or when this Deno process dies (its pipe to PID 1 closes), PID 1 exits; the kernel then kills
// everything left in the PID namespace, and the mounts disappear with the namespace. Needs root,
// util-linux (unshare, nsenter), python3 and an overlay-capable kernel.
import { run, type RunResult } from "./run.ts";
import { assertModeNamed, type ModeOptions } from "./pam_mode.ts";

const INIT = new URL("./sandbox_init.py", import.meta.url).pathname;

// Runs in the new namespaces as PID 1, then becomes sandbox_init.py. $1 = sandbox dir, $2 = INIT.
const SETUP = `
dir=$1
mount --bind "$dir/pam.d" /etc/pam.d
while read -r src target; do mount --bind "$src" "$target"; done < "$dir/binds"
mkdir "$dir/dev.upper" "$dir/dev.work"
mount -t overlay overlay -o "lowerdir=/dev,upperdir=$dir/dev.upper,workdir=$dir/dev.work" /dev
exec python3 -u "$2" "$dir/syslog"
`;

/** What a PAM service file says when no other file matches: nothing gets in. */
const OTHER = ["auth", "account", "password", "session"].map((t) => `${t} required pam_deny.so\n`)
  .join("");

export interface SandboxOptions {
  /** Files to replace inside the sandbox: path on the machine -> content of the private copy
   * (same mode as the original). */
  files?: Record<string, string>;
}

/** One line that arrived on the sandbox's /dev/log. */
export interface SyslogRecord {
  priority: number; // 0 (emerg) .. 7 (debug)
  facility: number; // 10 = authpriv, 2 = mail, 4 = auth
  ident: string; // "saslauthd", "postfix/smtpd", "pamtester"
  pid?: number; // as seen inside the sandbox
  message: string; // after "ident[pid]: "
}

/** A process in the sandbox's PID namespace. */
export interface SandboxProcess {
  pid: number; // on the machine
  nsPid: number; // inside the sandbox
  ppid: number; // on the machine
  name: string; // /proc/PID/status Name (15 characters at most)
  state: string; // R, S, Z, ...
}

export class Sandbox implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncGenerator<string>;
  #stderr: Promise<string>;
  #syncs = 0;
  #closed = false;

  private constructor(
    readonly dir: string,
    child: Deno.ChildProcess,
    /** The PID namespace ("pid:[inode]"), to find its processes. */
    readonly pidNamespace: string,
    lines: AsyncGenerator<string>,
    stderr: Promise<string>,
  ) {
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#lines = lines;
    this.#stderr = stderr;
  }

  /** Makes the temp directory and the namespaces; resolves once /dev/log listens. */
  static async open(options: SandboxOptions = {}): Promise<Sandbox> {
    if (Deno.uid() !== 0) throw new Error("the sandbox needs root (mount and PID namespaces)");
    const dir = await Deno.makeTempDir({ prefix: "pam_mapi_sandbox_" });
    await Deno.chmod(dir, 0o755); // daemons that drop root (Postfix) must reach their files here
    try {
      await Deno.mkdir(`${dir}/pam.d`, { mode: 0o755 });
      await Deno.writeTextFile(`${dir}/pam.d/other`, OTHER);
      const binds: string[] = [];
      for (const [i, [target, text]] of Object.entries(options.files ?? {}).entries()) {
        const copy = `${dir}/file.${i}`;
        await Deno.writeTextFile(copy, text, { mode: (await Deno.stat(target)).mode! & 0o7777 });
        binds.push(`${copy} ${target}\n`);
      }
      await Deno.writeTextFile(`${dir}/binds`, binds.join(""));
      const child = new Deno.Command("unshare", {
        // --kill-child: should unshare itself be killed, PID 1 (and so the sandbox) dies too.
        args: ["--mount", "--propagation", "private", "--pid", "--fork", "--kill-child"]
          .concat(["--mount-proc", "sh", "-eu", "-c", SETUP, "sh", dir, INIT]),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines = readLines(child.stdout);
      const stderr = new Response(child.stderr).text();
      const first = await lines.next();
      if (first.value !== "ready") {
        try {
          child.kill("SIGKILL");
        } catch { /* already ended */ }
        await child.status;
        throw new Error(`the sandbox did not start: ${await stderr}`);
      }
      const ns = await Deno.readLink(`/proc/${child.pid}/ns/pid_for_children`);
      return new Sandbox(dir, child, ns, lines, stderr);
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /** Writes /etc/pam.d/NAME as the sandbox sees it (libpam reads it at every pam_start). Its
   * pam_mapi.so auth lines must name their mode (pam_mode.ts). */
  async pamService(name: string, lines: string[], options: ModeOptions = {}): Promise<void> {
    assertModeNamed(lines, `the sandbox's /etc/pam.d/${name}`, options);
    await Deno.writeTextFile(`${this.dir}/pam.d/${name}`, lines.join("\n") + "\n");
  }

  /** Copies a file into the sandbox directory (root-owned, 0755 all the way up, as pam_mapi.so
   * wants its helper) and returns its new path. */
  async copyIn(path: string): Promise<string> {
    const to = `${this.dir}/${path.slice(path.lastIndexOf("/") + 1)}`;
    await Deno.copyFile(path, to);
    await Deno.chmod(to, 0o755);
    return to;
  }

  /** Runs a command inside the sandbox (its mounts, its PID namespace) and waits for it. */
  run(
    cmd: string,
    args: string[],
    options: { stdin?: string; env?: Record<string, string> } = {},
  ): Promise<RunResult> {
    const pid = this.#child.pid;
    const ns = [`--mount=/proc/${pid}/ns/mnt`, `--pid=/proc/${pid}/ns/pid_for_children`];
    // Entering a mount namespace puts a process at that namespace's root, which is not ours when
    // we run in a chroot (a fresh-root check): take the root and directory of the sandbox's PID 1.
    const dirs = [`--root=/proc/${pid}/root`, `--wd=/proc/${pid}/cwd`];
    return run("nsenter", [...ns, ...dirs, "--", cmd, ...args], options);
  }

  /** Starts a daemon inside the sandbox: waits for the command (which forks and returns) with its
   * output going to DIR/daemons.log, so that the daemon does not hold our pipes open. */
  async start(cmd: string, args: string[]): Promise<void> {
    const log = `${this.dir}/daemons.log`;
    const r = await this.run("sh", ["-c", 'exec "$@" >>"$0" 2>&1 </dev/null', log, cmd, ...args]);
    if (r.code !== 0) {
      const out = await Deno.readTextFile(log).catch(() => "");
      throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${out}${r.stderr}`);
    }
  }

  /** Every syslog line received so far, including all lines sent before this call. */
  async syslog(): Promise<SyslogRecord[]> {
    const token = String(++this.#syncs);
    await this.#stdin.write(new TextEncoder().encode(`sync ${token}\n`));
    for (;;) {
      const { value, done } = await this.#lines.next();
      if (done) throw new Error(`the sandbox ended: ${await this.#stderr}`);
      if (value === `synced ${token}`) break;
    }
    const raw = await Deno.readTextFile(`${this.dir}/syslog`).catch(() => "");
    return raw.split("\n").flatMap(parseSyslog);
  }

  /** The processes now in the sandbox's PID namespace. */
  processes(): Promise<SandboxProcess[]> {
    return processesIn(this.pidNamespace);
  }

  /** Ends PID 1, and so every process left in the sandbox, and removes the temp directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#stdin.close().catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL"); // --kill-child takes PID 1 with it
      } catch { /* already ended */ }
    }, 10_000);
    try {
      await this.#child.status;
      for await (const _ of this.#lines) { /* drain */ }
      await this.#stderr;
    } finally {
      clearTimeout(timer);
      await Deno.remove(this.dir, { recursive: true });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The processes whose PID namespace is `ns` ("pid:[inode]"), as seen from the machine. */
export async function processesIn(ns: string): Promise<SandboxProcess[]> {
  const out: SandboxProcess[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (await Deno.readLink(`/proc/${e.name}/ns/pid`) !== ns) continue;
      const status = await Deno.readTextFile(`/proc/${e.name}/status`);
      const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "";
      out.push({
        pid: Number(e.name),
        nsPid: Number(field("NSpid").split(/\s+/).pop()),
        ppid: Number(field("PPid")),
        name: field("Name"),
        state: field("State").charAt(0),
      });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** "<PRI>Mmm dd hh:mm:ss ident[pid]: message" -> a record (none for anything else). */
export function parseSyslog(line: string): SyslogRecord[] {
  const m = /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d ([^:[]+)(?:\[(\d+)\])?: ?(.*)$/.exec(line);
  if (!m) return [];
  const pri = Number(m[1]);
  return [{
    priority: pri & 7,
    facility: pri >> 3,
    ident: m[2],
    pid: m[3] === undefined ? undefined : Number(m[3]),
    message: m[4],
  }];
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
    }
  }
  if (buffer) yield buffer;
}
