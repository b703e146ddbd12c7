// TCP_NODELAY on the sim's TLS listening socket, like gSOAP's soap_accept() sets it on every
// connection kopano-server accepts. Without it, a TLS server that writes its handshake flight and
// its session tickets in several small writes holds the next write until the client's delayed ACK
// (about 40 ms), which a real server never does: the bench would measure the sim, not the helper.
//
// Deno gives no way to set an option on a listener or on an accepted TlsConn (only TcpConn has
// setNoDelay), but Linux copies TCP_NODELAY from a listening socket to the sockets it accepts. So
// the listening socket's descriptor is looked up (its inode in /proc/net/tcp*, then the fd in
// /proc/self/fd that points at that inode) and libc's setsockopt is called on it through FFI.

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const LISTEN = "0A"; // st column of /proc/net/tcp

/** Inodes of listening TCP sockets on `port` (any address; ours or not, filtered later). */
function listeningInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(`:${hexPort}`) && f[3] === LISTEN) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** Sets TCP_NODELAY on this process's socket listening on `port`; throws when it cannot. */
export function setListenerNoDelay(port: number): void {
  const inodes = listeningInodes(port);
  let fd = -1;
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/self/fd/${e.name}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1])) {
      fd = Number(e.name);
      break;
    }
  }
  if (fd < 0) throw new Error(`no listening socket of ours on port ${port}`);
  const libc = Deno.dlopen("libc.so.6", {
    setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  });
  try {
    const one = new Int32Array([1]);
    if (libc.symbols.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4) !== 0) {
      throw new Error(`setsockopt(TCP_NODELAY) failed on fd ${fd}`);
    }
  } finally {
    libc.close();
  }
}
