/**
 * The SHA-256 of a content of any length, without loading node:crypto for a short one
 * (unless the thread has loaded it already).
 * Loading node:crypto costs a process several milliseconds of CPU (docs/ENGINE.md,
 * Start-up), more than hashing a few hundred KiB in JavaScript, and `mmh -c` of a small
 * file hashes nothing else. So the first JS_HASH_MAX bytes are held (copied: the caller's
 * memory may be reused); a content that ends within them is hashed by @noble/hashes, and
 * one that goes past them moves, held bytes first, to node:crypto's hash (the piece that
 * goes past is hashed there at once, not copied).
 */
import type { Hash } from "node:crypto";
// Imported by name, not through import(): the build then keeps only SHA-256 of the package.
import { sha256 } from "@noble/hashes/sha2.js";

/** The longest content hashed in JavaScript rather than by node:crypto. */
export const JS_HASH_MAX = 256 << 10;

/** How many contents were hashed in JavaScript and by node:crypto in this thread (for tests). */
export const sha256Counts = { js: 0, native: 0 };

/**
 * Whether this thread has already loaded node:crypto for a hash. Then a short content is
 * hashed there from its first byte too: its load is paid, and node:crypto is several times
 * faster than JavaScript (a library or service process compressing many small files;
 * docs/ENGINE.md, Per-file and per-chunk costs of compress).
 */
let nativeLoaded = false;

const nativeHash = (): Hash => {
  nativeLoaded = true;
  return process.getBuiltinModule("node:crypto").createHash("sha256");
};

export class Sha256 {
  private held: Uint8Array[] | undefined = [];
  private heldBytes = 0;
  private native: Hash | undefined;
  private readonly limit: number;

  /**
   * `limit`: the most bytes hashed in JavaScript; `native`: whether to hash in node:crypto
   * from the start (tests only; otherwise JS_HASH_MAX, and whether node:crypto is loaded).
   */
  constructor(limit = JS_HASH_MAX, native = nativeLoaded) {
    this.limit = limit;
    if (native) {
      this.native = nativeHash();
      this.held = undefined;
    }
  }

  update(bytes: Uint8Array): void {
    if (this.held === undefined) {
      this.native!.update(bytes);
      return;
    }
    if (this.heldBytes + bytes.length <= this.limit) {
      this.held.push(Uint8Array.from(bytes));
      this.heldBytes += bytes.length;
      return;
    }
    // Past the limit: the held bytes, then these, go to node:crypto, these without a copy
    // (a chunk of 512 KiB that ends a short header's hold was copied only to be hashed).
    this.native = nativeHash();
    for (const kept of this.held) this.native.update(kept);
    this.held = undefined;
    this.native.update(bytes);
  }

  /** The digest, as 64 lowercase hex digits. */
  async digest(): Promise<string> {
    if (this.held === undefined) {
      sha256Counts.native++;
      return this.native!.digest("hex");
    }
    const hash = sha256.create();
    for (const kept of this.held) hash.update(kept);
    this.held = undefined;
    sha256Counts.js++;
    return Buffer.from(hash.digest()).toString("hex");
  }
}
