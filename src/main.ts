// pam_mapi_helper: entry point. Dispatches on the command line and does no other top-level work,
// because this process starts for every SMTP login: the module path (--pam) is loaded eagerly,
// everything else (check, serve, status, help) is imported on demand.
import { takeLauncherArgs } from "./pam/launch.ts";
import { runPam } from "./pam/pam_mode.ts";
import { VERSION } from "./common/version.ts";

const USAGE = "Usage: pam_mapi_helper check [--json] USER [MODULE-ARGS...] | --pam |\n" +
  "       serve [--socket PATH] [--socket-mode MODE] | status [--socket PATH] [--json] |\n" +
  "       --help | --version\n";

async function main(argv: string[]): Promise<number> {
  const out = (s: string, fd: typeof Deno.stdout | typeof Deno.stderr = Deno.stdout) =>
    fd.writeSync(new TextEncoder().encode(s));
  if (argv.length === 1 && argv[0] === "--pam") return await runPam();
  if (argv[0] === "check") {
    const { runCheck } = await import("./cli/check.ts");
    return await runCheck(argv.slice(1));
  }
  if (argv[0] === "serve") {
    const { runServe } = await import("./daemon/serve.ts");
    return await runServe(argv.slice(1));
  }
  if (argv[0] === "status") {
    const { runStatus } = await import("./cli/status.ts");
    return await runStatus(argv.slice(1));
  }
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
    const { HELP } = await import("./cli/help.ts");
    out(HELP);
    return 0;
  }
  if (argv.length === 1 && argv[0] === "--version") {
    out(`pam_mapi_helper ${VERSION}\nshim protocol 1, Deno ${Deno.version.deno}\n`);
    return 0;
  }
  out(
    `pam_mapi_helper: ${argv.length ? "unknown usage" : "no command given"}\n${USAGE}`,
    Deno.stderr,
  );
  return 3;
}

Deno.exit(await main(takeLauncherArgs(Deno.args)));
