// The decompression bomb of the attacker's review (issue 10): a valid gzip reply of about 1 MB
// (under the 1 MiB reply limit) that inflates to 1020 MiB of zeros. Built from one 4 MiB
// segment compressed once and repeated (each ends with a full flush, so every copy stands alone),
// which takes milliseconds instead of compressing 1020 MiB in every test run.
import { constants, crc32, deflateRawSync } from "node:zlib";

const SEGMENT = 4 << 20;

/** A gzip member inflating to `mib` MiB of zero bytes (`mib` a multiple of 4). */
export function gzipBomb(mib: number): Uint8Array {
  const count = mib / 4;
  if (!Number.isInteger(count) || count < 1) throw new Error("mib must be a multiple of 4");
  const zeros = new Uint8Array(SEGMENT);
  const segment = deflateRawSync(zeros, { level: 9, finishFlush: constants.Z_FULL_FLUSH });
  // RFC 1952: magic, CM=8 (deflate), no flags, no mtime, XFL=2 (best compression), OS=3 (Unix).
  const header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];
  const finalBlock = [3, 0]; // an empty fixed-Huffman block with BFINAL set
  let crc = 0;
  for (let i = 0; i < count; i++) crc = crc32(zeros, crc);
  const out = new Uint8Array(header.length + segment.length * count + finalBlock.length + 8);
  out.set(header);
  let off = header.length;
  for (let i = 0; i < count; i++, off += segment.length) out.set(segment, off);
  out.set(finalBlock, off);
  const trailer = new DataView(out.buffer, off + finalBlock.length);
  trailer.setUint32(0, crc >>> 0, true);
  trailer.setUint32(4, (count * SEGMENT) >>> 0, true); // ISIZE: the length modulo 2^32
  return out;
}
