// What the launcher (shim/launcher.c) tells the bundled helper in front of its own arguments: that
// it did not trust the code cache directory and started Deno without it. The helper says so at
// warning once per login (every --pam reply, every check). A compiled helper never gets it: it
// keeps no code cache.
import type { LogRecord } from "./results.ts";

const FLAG = "--cache-untrusted=";
let note: LogRecord | null = null;

/** Takes the launcher's leading argument off argv (if there is one) and remembers it. */
export function takeLauncherArgs(argv: readonly string[]): string[] {
  if (!argv[0]?.startsWith(FLAG)) return [...argv];
  note = {
    priority: "warning",
    message: `code cache ${argv[0].slice(FLAG.length)}; running without it`,
  };
  return argv.slice(1);
}

/** The launcher's warning as a log record, or nothing. */
export function launcherLog(): LogRecord[] {
  return note ? [note] : [];
}
