// Where one Kopano server listens, as parsed from a socket= URL (args.ts parses it). Its own file
// so that the wire to Kopano (connect.ts, attempt.ts) needs nothing from the module's arguments.

export type SocketKind = "http" | "https" | "unix";

export interface SocketSpec {
  /** The URL exactly as configured (used in log lines). */
  url: string;
  kind: SocketKind;
  /** Host name or IP address (IPv6 without brackets); "" for unix. */
  host: string;
  port: number;
  /** Request target of the POST. */
  path: string;
  /** Host header value. */
  hostHeader: string;
  /** UNIX socket path for file:// sockets. */
  socketPath: string;
}
