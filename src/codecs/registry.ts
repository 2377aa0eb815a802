import { MmhError } from "../common/errors.ts";
import { brotliCodec } from "./brotli.ts";
import { cint2Codec, cintCodec } from "./cint.ts";
import { hierCodec } from "./hier/hier.ts";
import { lz4Codec } from "./lz4.ts";
import { noneCodec } from "./none.ts";
import { p251Codec } from "./p251.ts";
import type { Codec } from "./types.ts";
import { zstdCodec } from "./zstd.ts";

const byId = new Map<string, Codec>();
const byName = new Map<string, Codec>();

export function registerCodec(codec: Codec): void {
  if (!/^[\x20-\x7e]{4}$/.test(codec.id))
    throw new MmhError("E_INTERNAL", `codec id ${JSON.stringify(codec.id)} is not a FourCC`);
  if (byId.has(codec.id)) throw new MmhError("E_INTERNAL", `codec id ${codec.id} is registered twice`);
  byId.set(codec.id, codec);
  byName.set(codec.name, codec);
}

for (const codec of [
  noneCodec,
  zstdCodec,
  lz4Codec,
  brotliCodec,
  p251Codec,
  hierCodec,
  cintCodec,
  cint2Codec,
])
  registerCodec(codec);

/** The codec for a FourCC read from a file; unknown ids are E_UNSUPPORTED. */
export function codecById(id: string): Codec {
  const codec = byId.get(id);
  if (!codec) throw new MmhError("E_UNSUPPORTED", `unknown codec ${JSON.stringify(id)}`);
  return codec;
}

/** The codec for a name or FourCC given by a user (case-insensitive). */
export function codecByName(name: string): Codec {
  const key = name.trim().toLowerCase();
  const codec =
    byName.get(key) ?? [...byId.values()].find((c) => c.id.trim().toLowerCase() === key) ?? aliases(key);
  if (!codec) {
    throw new MmhError("E_BAD_OPTION", `unknown codec "${name}" (known: ${[...byName.keys()].join(", ")})`);
  }
  return codec;
}

function aliases(key: string): Codec | undefined {
  const table: Record<string, string> = { zst: "zstd", br: "brotli", stored: "none", store: "none" };
  return table[key] ? byName.get(table[key]) : undefined;
}

export function listCodecs(): Codec[] {
  return [...byId.values()];
}

/** Check a level against a codec's range; returns the level to use. */
export function resolveLevel(codec: Codec, level: number | undefined): number | undefined {
  if (level === undefined) return codec.levels?.default;
  const range = codec.levels;
  if (!range) throw new MmhError("E_BAD_OPTION", `codec ${codec.name} takes no level`);
  if (!Number.isInteger(level) || level < range.min || level > range.max || range.excluded?.includes(level)) {
    throw new MmhError(
      "E_BAD_OPTION",
      `level ${level} is not valid for ${codec.name} (${range.min} to ${range.max}${range.excluded?.length ? `, not ${range.excluded.join(", ")}` : ""})`,
    );
  }
  return level;
}
