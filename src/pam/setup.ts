// What both modes do between parsing the arguments and talking to a server: narrow the process's
// permissions and, for https:// sockets, load the CA certificates while reading is still allowed.
import { Config, parseModuleArgs } from "./args.ts";
import { neededPermissions, revokeAllBut, revokeNoLongerNeeded } from "./permissions.ts";
import type { CaSet } from "../kopano/tls_ca.ts";

export interface Prepared {
  cfg: Config;
  /** CA certificates for https:// (undefined when no socket uses TLS). */
  caCerts: string[] | undefined;
  /** Where the trusted CAs come from, for check and debug output. */
  caSource: string | null;
  /** What the CA set is, for keeping TLS connections apart (from `loadCa`; null otherwise). */
  caIdentity: string | null;
}

/** A configuration problem found after parsing (an unreadable cafile=); PAM_SERVICE_ERR. */
export class SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SetupError";
  }
}

/** The CA certificates for https://: cafile= when given, else the system bundle. */
export type CaLoader = (cafile: string | null) => Promise<CaSet>;

export interface PrepareOptions {
  /**
   * Drop the permissions this configuration does not need (default). Right for a process that
   * serves one request; the resident helper serves many configurations and narrows once, at start.
   */
  narrow?: boolean;
  /** Loads the CA certificates (throws CaError); default: read them from disk now. */
  loadCa?: CaLoader;
}

/** Parses the module arguments (throws ArgError) and narrows permissions (throws SetupError). */
export async function prepare(
  args: readonly string[],
  opts: PrepareOptions = {},
): Promise<Prepared> {
  const cfg = parseModuleArgs(args);
  const narrow = opts.narrow ?? true;
  const { early, late } = neededPermissions(cfg);
  if (narrow) revokeAllBut(early);
  let caCerts: string[] | undefined;
  let caSource: string | null = null;
  let caIdentity: string | null = null;
  if (cfg.sockets.some((s) => s.kind === "https")) {
    // Loaded only here: a plain-HTTP or UNIX-socket login never parses this module.
    const { loadCaCerts, CaError } = await import("../kopano/tls_ca.ts");
    try {
      const ca = await (opts.loadCa ?? loadCaCerts)(cfg.cafile);
      caCerts = ca.certs;
      caSource = ca.source;
      caIdentity = ca.identity ?? null;
    } catch (e) {
      if (e instanceof CaError) throw new SetupError(e.message);
      throw e;
    } finally {
      if (narrow) revokeNoLongerNeeded(early, late);
    }
  }
  return { cfg, caCerts, caSource, caIdentity };
}
