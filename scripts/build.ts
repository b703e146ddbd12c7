// deno task build: writes dist/pam_mapi.so (the C shim) and dist/pam_mapi_helper (the helper).
//
// The helper is a `deno compile` executable when Deno can obtain its compile runtime (DENORT_BIN,
// a cached runtime, or network access); otherwise it is the bundled JavaScript,
// dist/pam_mapi_helper.js, and dist/pam_mapi_helper is a small C launcher (shim/launcher.c) that
// checks it, the installed deno and the code cache, then starts deno on it with fixed flags. Both
// behave the same (docs/development.md, Commands).
//
// Environment knobs (all optional; the launcher's paths are compiled in):
//   PAM_MAPI_HELPER_MODE    "auto" (default), "bundle" or "compile" (compile fails if it cannot)
//   PAM_MAPI_CACHE_DIR      DENO_DIR the bundled helper uses for V8's code cache
//                           (default: <repo>/dist/cache; packages use /var/cache/pam_mapi)
//   PAM_MAPI_DENO           deno executable the launcher starts (default: this deno)
//   PAM_MAPI_BUNDLE         where the launcher finds the bundle (default: dist/pam_mapi_helper.js;
//                           packages use /usr/share/pam_mapi/pam_mapi_helper.js); the bundle of
//                           --pam alone is next to it, with _pam before .js
//   PAM_MAPI_HELPER_PATH    helper path compiled into the shim (default: the packaged location)
import { buildHelper } from "./lib/helper_build.ts";
import { buildShim } from "./lib/shim_build.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const dist = `${root}/dist`;
await Deno.mkdir(dist, { recursive: true });

await buildShim(root, dist);
const how = await buildHelper(root, dist);
console.log(`build: dist/pam_mapi.so and dist/pam_mapi_helper (${how})`);
