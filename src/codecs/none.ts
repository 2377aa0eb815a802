import { MmhError } from "../common/errors.ts";
import type { Codec } from "./types.ts";

export const noneCodec: Codec = {
  id: "NONE",
  name: "none",
  description: "stored as is",
  encode(raw) {
    return { payload: raw };
  },
  decode(payload, params, rawLength) {
    if (params.length !== 0) throw new MmhError("E_CORRUPT", "NONE chunk has parameters");
    if (payload.length !== rawLength) {
      throw new MmhError("E_CORRUPT", `NONE chunk stores ${payload.length} bytes but declares ${rawLength}`);
    }
    return payload;
  },
};
