// Listeners (TCP, TLS, UNIX socket), the connections they accept, and the sim's shared state.
// Closing the sim closes every listener and connection and waits for all of them, so nothing
// outlives close() (Deno.test's resource and op sanitizers stay happy).

import { Connection, type ConnectionHost } from "./connection.ts";
import {
  ConnectionLog,
  type SimConnectionInfo,
  type SimConnectionStats,
} from "./connection_log.ts";
import { DEFAULT_USERS, Directory, type SimUser, validateUsers } from "./directory.ts";
import { type Fault, FaultSet, type Transport } from "./faults.ts";
import { Methods, type ServerState, type UnixPeer } from "./methods.ts";
import { RequestLog, type SimRequest } from "./request_log.ts";
import { setListenerNoDelay } from "./nodelay.ts";
import { SessionTable, type SimSessionInfo } from "./sessions.ts";
import { type ServerProfile, serverProfile } from "./version.ts";

export interface TlsListen {
  /** HOST:PORT, e.g. "127.0.0.1:0". */
  listen: string;
  certFile: string;
  keyFile: string;
}

export interface KopanoSimOptions {
  /** TCP listeners, "HOST:PORT" ("[::1]:0", "127.0.0.1:0"). Default ["127.0.0.1:0"] when no listener is given. */
  listen?: string[];
  /** UNIX socket path (created mode 0666, an old socket file there is replaced). */
  unix?: string;
  tls?: TlsListen;
  /** Default: alice/secret, bob/bobpass (imap on, pop3 off), kadmin/adminpass (admin). */
  users?: readonly SimUser[];
  /** Server option disabled_features (space separated). Default "imap pop3", like a stock server. */
  disabledFeatures?: string;
  /** Emulated kopano-server/zarafa-server version X.Y.Z[.REV]. Default "11.0.2". */
  version?: string;
  /** Assumed identity of every UNIX-socket client. Default "admin" (see UnixPeer). */
  unixPeer?: UnixPeer;
  /** Session binding on the UNIX socket: "connection" (default) or "socket" (all clients alike). */
  unixOrigin?: "connection" | "socket";
  /** session_timeout. Default 300 000 ms. */
  sessionTimeoutMs?: number;
  /** Idle keep-alive close on TCP/TLS (server_recv_timeout). Default 5 000 ms. */
  idleTimeoutMs?: number;
  /** Time allowed to receive one request (server_read_timeout). Default 60 000 ms. */
  readTimeoutMs?: number;
  /** Larger request bodies make the sim close the connection. Default 4 MiB. */
  maxBodyBytes?: number;
  faults?: Fault[];
  /** Oldest requests are dropped from `requests` beyond this. Default 10 000. */
  maxLoggedRequests?: number;
  /** Called with one line per request (the CLI's --verbose). */
  log?: (line: string) => void;
}

export interface SimUrls {
  http: string[];
  https: string[];
  unix: string[];
}

interface Slot {
  transport: Transport;
  hostname: string;
  port: number;
  path: string;
  tls: { cert: string; key: string } | null;
  listener: Deno.Listener | null;
  /** UNIX socket kept as a stale file while "refuse" is set. */
  staleFile: boolean;
  acceptLoop: Promise<void>;
  /** Settles when the last #shut of this slot is complete (a re-listen must wait for it). */
  closing: Promise<void>;
  url: string;
}

/** "HOST:PORT", "[v6]:PORT", ":PORT" or "PORT" (host 127.0.0.1). */
export function parseHostPort(s: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s) ?? /^()()(\d+)$/.exec(s);
  if (!m) throw new Error(`bad address "${s}" (expected HOST:PORT)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`bad port in "${s}"`);
  return { hostname: m[1] || m[2] || "127.0.0.1", port };
}

function isSocketFile(path: string): boolean {
  try {
    return Deno.lstatSync(path).isSocket === true;
  } catch {
    return false;
  }
}

export class SimServer {
  readonly requests: SimRequest[];
  readonly connectionLog: ConnectionLog;
  readonly serverGuid: Uint8Array;
  readonly profile: ServerProfile;
  #state: ServerState;
  #host: ConnectionHost;
  #log: RequestLog;
  #faults: FaultSet;
  #slots: Slot[] = [];
  #conns = new Set<Connection>();
  #tasks = new Set<Promise<void>>();
  #connSeq = 0;
  #closed = false;
  #closing: Promise<void> | null = null;

  private constructor(opts: KopanoSimOptions, directory: Directory) {
    this.profile = serverProfile(opts.version ?? "11.0.2");
    this.serverGuid = crypto.getRandomValues(new Uint8Array(16));
    this.#state = {
      profile: this.profile,
      directory,
      sessions: new SessionTable(opts.sessionTimeoutMs ?? 300_000),
      disabledFeatures: opts.disabledFeatures ?? "imap pop3",
      unixPeer: opts.unixPeer ?? "admin",
      serverGuid: this.serverGuid,
    };
    this.#log = new RequestLog(opts.maxLoggedRequests ?? 10_000);
    this.requests = this.#log.entries;
    this.connectionLog = new ConnectionLog(opts.maxLoggedRequests ?? 10_000);
    this.#faults = new FaultSet([]); // start() applies opts.faults once the listeners exist
    this.#host = {
      profile: this.profile,
      methods: new Methods(this.#state),
      faults: () => this.#faults,
      log: this.#log,
      connections: this.connectionLog,
      idleTimeoutMs: opts.idleTimeoutMs ?? 5_000,
      readTimeoutMs: opts.readTimeoutMs ?? 60_000,
      maxBodyBytes: opts.maxBodyBytes ?? 4 * 1024 * 1024,
      unixOrigin: opts.unixOrigin ?? "connection",
      verbose: opts.log ?? null,
    };
  }

  static async start(opts: KopanoSimOptions = {}): Promise<SimServer> {
    const peer = opts.unixPeer ?? "admin";
    if (!(peer === "admin" || peer === "user" || /^local:.+/.test(peer))) {
      throw new Error(`unixPeer must be admin, user or local:NAME, not "${peer}"`);
    }
    const users = validateUsers(opts.users ?? DEFAULT_USERS);
    const sim = new SimServer(opts, await Directory.create(users));
    try {
      const listen = opts.listen ?? (opts.unix || opts.tls ? [] : ["127.0.0.1:0"]);
      for (const l of listen) sim.#addSlot("tcp", l);
      if (opts.tls) {
        sim.#addSlot("tls", opts.tls.listen, {
          cert: await Deno.readTextFile(opts.tls.certFile),
          key: await Deno.readTextFile(opts.tls.keyFile),
        });
      }
      if (opts.unix) sim.#addSlot("unix", opts.unix);
      await sim.setFaults(opts.faults ?? []);
    } catch (e) {
      await sim.close();
      throw e;
    }
    return sim;
  }

  #addSlot(transport: Transport, where: string, tls: Slot["tls"] = null): void {
    const slot: Slot = {
      transport,
      hostname: "",
      port: 0,
      path: "",
      tls,
      listener: null,
      staleFile: false,
      acceptLoop: Promise.resolve(),
      closing: Promise.resolve(),
      url: "",
    };
    if (transport === "unix") {
      slot.path = where.startsWith("/") ? where : `${Deno.cwd()}/${where}`;
      slot.url = `file://${slot.path}`;
    } else {
      Object.assign(slot, parseHostPort(where));
    }
    this.#slots.push(slot);
    this.#open(slot);
  }

  #open(slot: Slot): void {
    let listener: Deno.Listener;
    if (slot.transport === "unix") {
      // Like kopano-server: replace a leftover socket (never a regular file).
      if (isSocketFile(slot.path)) Deno.removeSync(slot.path);
      slot.staleFile = false;
      listener = Deno.listen({ transport: "unix", path: slot.path });
      Deno.chmodSync(slot.path, 0o666);
    } else if (slot.transport === "tls") {
      listener = Deno.listenTls({
        hostname: slot.hostname,
        port: slot.port,
        cert: slot.tls!.cert,
        key: slot.tls!.key,
      });
      setListenerNoDelay((listener.addr as Deno.NetAddr).port);
    } else {
      listener = Deno.listen({ hostname: slot.hostname, port: slot.port });
    }
    if (slot.transport !== "unix") {
      const addr = listener.addr as Deno.NetAddr;
      slot.port = addr.port; // keep the real port so that a re-listen after "refuse" gets it back
      const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      slot.url = `${slot.transport === "tls" ? "https" : "http"}://${host}:${addr.port}/kopano`;
    }
    slot.listener = listener;
    slot.acceptLoop = this.#acceptLoop(slot, listener);
    this.#track(slot.acceptLoop);
  }

  /**
   * Stops listening and resolves once the listening socket is really gone (the pending accept
   * has ended; until then the kernel would still complete handshakes). With `leaveStale`, a
   * UNIX socket stays behind as a stale file so that connect() gets ECONNREFUSED, as after a
   * server crash.
   */
  #shut(slot: Slot, leaveStale: boolean): Promise<void> {
    const l = slot.listener;
    if (!l) return slot.closing;
    slot.listener = null;
    slot.closing = this.#finishShut(slot, l, leaveStale);
    return slot.closing;
  }

  async #finishShut(slot: Slot, l: Deno.Listener, leaveStale: boolean): Promise<void> {
    const keep = `${slot.path}.stale-${crypto.randomUUID()}`;
    let linked = false;
    if (slot.transport === "unix" && leaveStale) {
      try {
        Deno.linkSync(slot.path, keep);
        linked = true;
      } catch {
        // no stale file then: connect() fails with ENOENT instead
      }
    }
    try {
      l.close(); // Deno unlinks the UNIX socket path once the listener is gone
    } catch {
      // already closed
    }
    await slot.acceptLoop;
    if (linked) {
      try {
        Deno.renameSync(keep, slot.path);
        slot.staleFile = true;
      } catch {
        Deno.removeSync(keep);
      }
    }
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    const done = () => void this.#tasks.delete(p);
    p.then(done, done);
  }

  async #acceptLoop(slot: Slot, listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      if (this.#closed || this.#faults.takeReset(slot.transport)) {
        try {
          conn.close();
        } catch {
          // gone already
        }
        continue;
      }
      // Like gSOAP's soap_accept(): no Nagle delay on any reply (TLS: see nodelay.ts).
      if (slot.transport === "tcp") {
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // the client is gone already: the connection's first read says so
        }
      }
      const c = new Connection(this.#host, conn, slot.transport, ++this.#connSeq);
      this.#conns.add(c);
      const run = c.run();
      const done = () => void this.#conns.delete(c);
      run.then(done, done);
      this.#track(run);
    }
  }

  get urls(): SimUrls {
    const of = (t: Transport) => this.#slots.filter((s) => s.transport === t).map((s) => s.url);
    return { http: of("tcp"), https: of("tls"), unix: of("unix") };
  }

  openSessions(): number {
    return this.#state.sessions.count();
  }

  sessions(): SimSessionInfo[] {
    return this.#state.sessions.list();
  }

  connections(): SimConnectionInfo[] {
    return this.connectionLog.entries;
  }

  connectionStats(): SimConnectionStats {
    return this.connectionLog.stats();
  }

  /**
   * Replaces the faults. Bad faults throw at once (the old ones stay). The promise settles when
   * listeners closed or reopened for "refuse" are really so.
   */
  setFaults(faults: Fault[]): Promise<void> {
    this.#faults = new FaultSet(faults);
    if (this.#closed) return Promise.resolve();
    const waits: Promise<void>[] = [];
    for (const slot of this.#slots) {
      const refuse = this.#faults.refuses(slot.transport);
      if (refuse && slot.listener) waits.push(this.#shut(slot, true));
      else if (!refuse && !slot.listener) {
        waits.push(slot.closing.then(() => {
          if (!this.#closed && !slot.listener && !this.#faults.refuses(slot.transport)) {
            this.#open(slot);
          }
        }));
      }
    }
    return Promise.all(waits).then(() => {});
  }

  clearFaults(): Promise<void> {
    return this.setFaults([]);
  }

  clearRequests(): void {
    this.#log.clear();
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    const shut = this.#slots.map(async (slot) => {
      await this.#shut(slot, false);
      if (slot.staleFile && isSocketFile(slot.path)) Deno.removeSync(slot.path);
    });
    for (const c of this.#conns) c.close();
    this.#closing = (async () => {
      await Promise.allSettled(shut);
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    })();
    return this.#closing;
  }
}
