// deno task build: writes dist/pam_mapi.so (the C shim) and dist/pam_mapi_helper (the helper).
//
// The helper is a `deno compile` executable when Deno can obtain its compile runtime (DENORT_BIN,
// a cached runtime, or network access); otherwise it is the bundled JavaScript behind a `#!` line
// that starts the installed deno with fixed flags. Both behave the same (SPEC section 7).
//
// Environment knobs (all optional):
//   PAM_MAPI_HELPER_MODE    "auto" (default), "bundle" or "compile" (compile fails if it cannot)
//   PAM_MAPI_CACHE_DIR      DENO_DIR the bundled helper uses for V8's code cache
//                           (default: <repo>/dist/cache; packages use /var/cache/pam_mapi)
//   PAM_MAPI_DENO           deno executable the bundled helper starts (default: this deno)
//   PAM_MAPI_HELPER_PATH    helper path compiled into the shim (default: the packaged location)
import { buildHelper } from "./lib/helper_build.ts";
import { buildShim } from "./lib/shim_build.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const dist = `${root}/dist`;
await Deno.mkdir(dist, { recursive: true });

await buildShim(root, dist);
const how = await buildHelper(root, dist);
console.log(`build: dist/pam_mapi.so and dist/pam_mapi_helper (${how})`);
