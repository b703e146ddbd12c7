// The shim refuses to run a helper that anyone but root could have written (SPEC 3): the file
// and every directory above it are checked, on the resolved path, before anything is started.
import assert from "node:assert/strict";
import {
  build,
  helperDir,
  helperPids,
  line,
  LOG_DEBUG,
  LOG_ERR,
  pamConf,
  runDriver,
  TEST_BUILD,
  VARIANTS,
} from "./lib.ts";

const NOBODY = 65534;

for (const v of VARIANTS) {
  /** Runs one auth with helper=path; returns the result and the shim's log lines. */
  const attempt = async (dir: string, path: string) => {
    const conf = await pamConf(dir, { mapi: [line(v, "auth", [`helper=${path}`, "debug"])] });
    return await runDriver(v, ["--password", "pw-alice", conf, "mapi"]);
  };

  const refused = async (dir: string, path: string, reason: string) => {
    const r = await attempt(dir, path);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR", reason);
    const errs = r.logs.filter((l) => l.priority === LOG_ERR);
    assert.deepEqual(errs.map((l) => l.message), [
      `helper ${path} refused: ${reason}; user=alice result=PAM_SERVICE_ERR`,
    ]);
    assert.ok(!r.logs.some((l) => l.message.startsWith("debug: starting helper")));
    assert.deepEqual(await helperPids(dir), [], "nothing was started");
  };

  Deno.test(`${v.name}: a good helper runs (root, 0755, root-owned 0700/0755 dirs)`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const r = await attempt(dir, helper);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
  });

  Deno.test(`${v.name}: missing helper`, async () => {
    await build();
    const { dir } = await helperDir();
    await refused(dir, `${dir}/no_such_helper`, "No such file or directory");
  });

  Deno.test(`${v.name}: helper that is not a regular file`, async () => {
    await build();
    const { dir } = await helperDir();
    await Deno.mkdir(`${dir}/adir`, { mode: 0o755 });
    await refused(dir, `${dir}/adir`, "not a regular file");
    await refused(dir, "/dev/null", "not a regular file");
  });

  Deno.test(`${v.name}: helper not owned by root`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    await Deno.chown(helper, NOBODY, 0);
    await refused(dir, helper, "not owned by root");
  });

  Deno.test(`${v.name}: group- or world-writable helper`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    await Deno.chmod(helper, 0o775);
    await refused(dir, helper, "writable by group or others");
    await Deno.chmod(helper, 0o757);
    await refused(dir, helper, "writable by group or others");
    await Deno.chmod(helper, 0o777);
    await refused(dir, helper, "writable by group or others");
  });

  Deno.test(`${v.name}: helper that is not executable`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    await Deno.chmod(helper, 0o644);
    await refused(dir, helper, "not executable");
  });

  Deno.test(`${v.name}: a directory above the helper that others could write`, async () => {
    await build();
    const { dir } = await helperDir();
    const sub = `${dir}/sub`;
    await Deno.mkdir(sub);
    await Deno.copyFile(`${TEST_BUILD}/fake_helper`, `${sub}/fake_helper`);
    await Deno.chmod(`${sub}/fake_helper`, 0o755);
    await Deno.chmod(sub, 0o777);
    await refused(dir, `${sub}/fake_helper`, `directory ${sub} is writable by group or others`);
    await Deno.chmod(sub, 0o775);
    await refused(dir, `${sub}/fake_helper`, `directory ${sub} is writable by group or others`);
    await Deno.chmod(sub, 0o755);
    await Deno.chown(sub, NOBODY, 0);
    await refused(dir, `${sub}/fake_helper`, `directory ${sub} is not owned by root`);
    // A root-owned sticky directory (like /tmp) is fine: others cannot replace root's entries.
    await Deno.chown(sub, 0, 0);
    await Deno.chmod(sub, 0o1777);
    const r = await attempt(dir, `${sub}/fake_helper`);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
  });

  Deno.test(`${v.name}: a symlink is resolved once; the real file is checked and executed`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    await Deno.symlink(helper, `${dir}/link`);
    let r = await attempt(dir, `${dir}/link`);
    assert.equal(r.kv.auth, "PAM_SUCCESS");
    assert.ok(
      r.logs.some((l) =>
        l.priority === LOG_DEBUG && l.message.startsWith(`debug: starting helper ${helper} for`)
      ),
    );
    // A link to a file that fails the checks is refused like the file itself.
    await Deno.chmod(helper, 0o757);
    r = await attempt(dir, `${dir}/link`);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
  });

  Deno.test(`${v.name}: helper= must be absolute (an argument error, before any prompt)`, async () => {
    await build();
    const { dir } = await helperDir();
    const r = await attempt(dir, "fake_helper");
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR");
    assert.equal(r.kv.prompts, "0");
    assert.deepEqual(r.logs.map((l) => l.message), [
      'bad module argument "helper=fake_helper": helper must be an absolute path; result=PAM_SERVICE_ERR',
    ]);
  });
}
