// What both modes do between parsing the arguments and talking to a server: narrow the process's
// permissions and, for https:// sockets, load the CA certificates while reading is still allowed.
import { Config, parseModuleArgs } from "./args.ts";
import { neededPermissions, revokeAllBut } from "./permissions.ts";

export interface Prepared {
  cfg: Config;
  /** CA certificates for https:// (undefined when no socket uses TLS). */
  caCerts: string[] | undefined;
  /** Where the trusted CAs come from, for check and debug output. */
  caSource: string | null;
}

/** A configuration problem found after parsing (an unreadable cafile=); PAM_SERVICE_ERR. */
export class SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SetupError";
  }
}

/** Parses the module arguments (throws ArgError) and narrows permissions (throws SetupError). */
export async function prepare(args: readonly string[]): Promise<Prepared> {
  const cfg = parseModuleArgs(args);
  const { early, late } = neededPermissions(cfg);
  revokeAllBut(early);
  let caCerts: string[] | undefined;
  let caSource: string | null = null;
  if (cfg.sockets.some((s) => s.kind === "https")) {
    // Loaded only here: a plain-HTTP or UNIX-socket login never parses this module.
    const { loadCaCerts, CaError } = await import("./tls_ca.ts");
    try {
      const ca = loadCaCerts(cfg.cafile);
      caCerts = ca.certs;
      caSource = ca.source;
    } catch (e) {
      if (e instanceof CaError) throw new SetupError(e.message);
      throw e;
    } finally {
      revokeAllBut(late);
    }
  }
  return { cfg, caCerts, caSource };
}
