// Run with the built helper's permissions: prepares the module arguments given on the command line
// (as the helper does) and prints the resulting permission states as JSON.
import { prepare } from "../../src/pam/setup.ts";

const before = Object.fromEntries(
  (["net", "read", "write"] as const).map((
    name,
  ) => [name, Deno.permissions.querySync({ name }).state]),
);
const p = await prepare(Deno.args);
const after = Object.fromEntries(
  (["net", "read", "write", "env", "run", "sys", "ffi"] as const).map((
    name,
  ) => [name, Deno.permissions.querySync({ name }).state]),
);
console.log(JSON.stringify({ before, after, ca: p.caCerts?.length ?? null, caSource: p.caSource }));
