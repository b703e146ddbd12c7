// A directory for a resident helper's socket that pam_mapi.so and `serve` trust: root's, mode 0755,
// directly under /run (root's, 0755). Never under /tmp: a socket below a directory that others may
// write to, sticky or not, could be held hostage while its daemon is stopped, and both refuse it
// (docs/protocol.md §7.2). The caller removes it (tests, and the bench, run as root).

/** Makes the directory; `prefix` names it in /run. */
export async function socketDir(prefix = "pam_mapi_test_"): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: "/run", prefix });
  await Deno.chmod(dir, 0o755);
  return dir;
}

/** The same, removed (with what is left in it) when disposed. */
export async function disposableSocketDir(
  prefix = "pam_mapi_test_",
): Promise<{ path: string } & AsyncDisposable> {
  const path = await socketDir(prefix);
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}
