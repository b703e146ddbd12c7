// The shim refuses to run a helper that anyone but root could have written (pam_mapi(8) helper=):
// the file, and every directory the path passes through (as written, and inside every symbolic
// link's target), are checked before anything is started; the fully resolved path is what runs.
import assert from "node:assert/strict";
import {
  build,
  helperDir,
  helperPids,
  line,
  LOG_DEBUG,
  LOG_ERR,
  pamConf,
  run,
  runDriver,
  TEST_BUILD,
  VARIANTS,
} from "./lib.ts";

const NOBODY = 65534;

for (const v of VARIANTS) {
  /** Runs one auth with helper=path; returns the result and the shim's log lines. */
  const attempt = async (dir: string, path: string) => {
    const conf = await pamConf(dir, {
      mapi: [line(v, "auth", [`helper=${path}`, "daemon=off", "debug"])],
    });
    return await runDriver(v, ["--password", "pw-alice", conf, "mapi"]);
  };

  const refused = async (dir: string, path: string, reason: string) => {
    const before = await helperPids(dir);
    const r = await attempt(dir, path);
    assert.equal(r.kv.auth, "PAM_SERVICE_ERR", reason);
    const errs = r.logs.filter((l) => l.priority === LOG_ERR);
    assert.deepEqual(errs.map((l) => l.message), [
      `helper ${path} refused: ${reason}; user=alice result=PAM_SERVICE_ERR`,
    ]);
    assert.ok(!r.logs.some((l) => l.message.startsWith("debug: starting helper")));
    assert.deepEqual(await helperPids(dir), before, "nothing was started");
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

  /** Runs one auth and asserts it started `resolved` (the debug line names the path executed). */
  const accepted = async (dir: string, path: string, resolved: string) => {
    const r = await attempt(dir, path);
    assert.equal(r.kv.auth, "PAM_SUCCESS", JSON.stringify(r.logs));
    assert.ok(
      r.logs.some((l) => l.message.startsWith(`debug: starting helper ${resolved} for`)),
      JSON.stringify(r.logs),
    );
  };

  /** A directory owned by nobody (0755) inside dir: its owner could swap any entry in it. */
  const userDir = async (dir: string) => {
    const udir = `${dir}/user`;
    await Deno.mkdir(udir);
    await Deno.chmod(udir, 0o755);
    await Deno.chown(udir, NOBODY, NOBODY);
    return udir;
  };

  Deno.test(`${v.name}: a symlink in a directory another user owns is refused`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const udir = await userDir(dir);
    // The link points at a good, root-owned helper, but nobody could re-point it at any other
    // root-owned executable.
    await Deno.symlink(helper, `${udir}/link`);
    await refused(dir, `${udir}/link`, `directory ${udir} is not owned by root`);
    // The same through ".." out of that directory: its owner cannot change what ".." is, but the
    // rule stays simple: every directory the path passes through.
    await refused(dir, `${udir}/../fake_helper`, `directory ${udir} is not owned by root`);
  });

  Deno.test(`${v.name}: a chain of symlinks whose middle link is in a writable directory`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const wdir = `${dir}/writable`;
    await Deno.mkdir(wdir);
    await Deno.chmod(wdir, 0o777);
    await Deno.symlink(helper, `${wdir}/link2`);
    await Deno.symlink(`${wdir}/link2`, `${dir}/link1`);
    await refused(dir, `${dir}/link1`, `directory ${wdir} is writable by group or others`);
    // A relative hop through a user-owned directory is refused the same way.
    const udir = await userDir(dir);
    await Deno.symlink("../fake_helper", `${udir}/up`);
    await Deno.symlink("user/up", `${dir}/rel`);
    await refused(dir, `${dir}/rel`, `directory ${udir} is not owned by root`);
    // And a link whose target lies in such a directory (the resolved path's rule).
    await Deno.copyFile(helper, `${udir}/fake_helper`);
    await Deno.symlink(`${udir}/fake_helper`, `${dir}/into`);
    await refused(dir, `${dir}/into`, `directory ${udir} is not owned by root`);
  });

  Deno.test(`${v.name}: symlinks in root-owned directories, "..", relative targets`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    await Deno.copyFile(helper, `${dir}/a/fake_helper`);
    await Deno.chmod(`${dir}/a/fake_helper`, 0o755);
    await accepted(dir, `${dir}/a/b/../../fake_helper`, helper);
    await accepted(dir, `${dir}//a/./b/..//fake_helper`, `${dir}/a/fake_helper`);
    // Relative targets are relative to the link's directory.
    await Deno.symlink("../fake_helper", `${dir}/a/up`);
    await accepted(dir, `${dir}/a/up`, helper);
    await Deno.symlink("a/b/../up", `${dir}/rel`);
    await accepted(dir, `${dir}/rel`, helper);
    // ".." after a link leaves the directory the link led to, as the kernel does.
    await Deno.symlink("a/b", `${dir}/ldir`);
    await accepted(dir, `${dir}/ldir/../fake_helper`, `${dir}/a/fake_helper`);
    // Something that is not a directory in the middle of the path.
    await refused(dir, `${helper}/x`, "Not a directory");
    await refused(dir, `${dir}/a/nothing/../fake_helper`, "No such file or directory");
  });

  Deno.test(`${v.name}: a symlink in a sticky directory must be root's`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    const sticky = `${dir}/sticky`;
    await Deno.mkdir(sticky);
    await Deno.chmod(sticky, 0o1777);
    await Deno.symlink(helper, `${sticky}/link`);
    await run("chown", ["-h", `${NOBODY}:${NOBODY}`, `${sticky}/link`]);
    await refused(
      dir,
      `${sticky}/link`,
      `symbolic link ${sticky}/link in the sticky directory ${sticky} is not owned by root`,
    );
    await run("chown", ["-h", "0:0", `${sticky}/link`]);
    await accepted(dir, `${sticky}/link`, helper);
  });

  Deno.test(`${v.name}: at most 40 symlinks; a loop is refused`, async () => {
    await build();
    const { dir, helper } = await helperDir();
    // A chain of 40 links is what the kernel follows; 41 is too many.
    await Deno.symlink(helper, `${dir}/c1`);
    for (let i = 2; i <= 41; i++) await Deno.symlink(`c${i - 1}`, `${dir}/c${i}`);
    await accepted(dir, `${dir}/c40`, helper);
    await refused(
      dir,
      `${dir}/c41`,
      `too many symbolic links (more than 40; a loop?) at ${dir}/c1`,
    );
    await Deno.symlink("loop2", `${dir}/loop1`);
    await Deno.symlink(`${dir}/loop1`, `${dir}/loop2`);
    await refused(
      dir,
      `${dir}/loop1`,
      `too many symbolic links (more than 40; a loop?) at ${dir}/loop1`,
    );
    await Deno.symlink("self/x", `${dir}/self`);
    await refused(
      dir,
      `${dir}/self`,
      `too many symbolic links (more than 40; a loop?) at ${dir}/self`,
    );
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
