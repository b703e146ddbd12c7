// Byte buffers that held a secret or a reply: wiped, and their memory given back at once.

/** Gives a buffer's memory back now, not at the next garbage collection (it is unusable after). */
export function release(b: Uint8Array): void {
  const buffer = b.buffer as ArrayBuffer;
  // Only a buffer we own whole: a view into a bigger one is the owner's to release.
  if (b.byteOffset === 0 && b.byteLength === buffer.byteLength && buffer.byteLength > 0) {
    buffer.transfer(0);
  }
}

/** Zeroes `b`, then releases it: no copy of what it held stays in the process. */
export function wipe(b: Uint8Array): void {
  b.fill(0);
  release(b);
}
