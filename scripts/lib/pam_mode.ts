// Every pam.d line that the demo, the bench and the tests write for pam_mapi.so says which mode it
// means: daemon=off (the module starts the helper for the login) or daemon=PATH (a resident helper
// of their own). Without daemon= the module asks the daemon at its compiled-in socket,
// /run/pam_mapi/helper.sock, which is the machine's: where a resident helper runs there, it would
// answer their logins instead (issue 17: the demo reported MISMATCH on such a machine). The
// writers (Sandbox.pamService, tests/shim's pamConf, the bench, the installed-package test) call
// assertModeNamed before they write.

export interface ModeOptions {
  /** Why lines here may leave daemon= out: the compiled-in socket is the writer's own (a private
   * /run, or a module built with another default). */
  defaultSocketIsOurs?: string;
}

/** Throws for an auth line of pam_mapi.so without daemon=; `where` names the file for the error. */
export function assertModeNamed(lines: string[], where: string, options: ModeOptions = {}): void {
  if (options.defaultSocketIsOurs) return;
  for (const line of lines.flatMap((l) => l.split("\n"))) {
    const words = line.trim().split(/\s+/);
    if (!/^-?auth$/.test(words[0] ?? "")) continue;
    // The control is one word, or [value=action ...] over several.
    let i = 1;
    if (words[i]?.startsWith("[")) { while (i < words.length && !words[i].endsWith("]")) i++; }
    const module = words[i + 1] ?? "";
    if (!/(^|\/)pam_mapi\.so$/.test(module)) continue;
    if (words.slice(i + 2).some((w) => w.startsWith("daemon="))) continue;
    throw new Error(
      `${where}: a pam_mapi.so auth line without daemon= would ask the machine's resident ` +
        `helper (/run/pam_mapi/helper.sock) where one runs; say daemon=off or ` +
        `daemon=<a socket of your own>: ${line.trim()}`,
    );
  }
}
