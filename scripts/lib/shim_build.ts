// Builds the C shim with its Makefile and copies the module into dist/.
import { runOrThrow } from "./run.ts";

export async function buildShim(root: string, dist: string): Promise<void> {
  const makeArgs = ["-C", `${root}/shim`, "--no-print-directory"];
  const helperPath = Deno.env.get("PAM_MAPI_HELPER_PATH");
  if (helperPath) makeArgs.push(`HELPER_PATH=${helperPath}`);
  await runOrThrow("make", makeArgs);
  await Deno.copyFile(`${root}/shim/build/pam_mapi.so`, `${dist}/pam_mapi.so`);
  await Deno.chmod(`${dist}/pam_mapi.so`, 0o755);
}
