/** Query strings of the coding routes, validated: a bad value is a 400 with E_BAD_OPTION. */
import { z } from "zod";
import { parseSize } from "../../tools/index.ts";
import { codecNames, GOALS } from "../config.ts";
import { ServiceError } from "../errors.ts";

const integer = z
  .string()
  .regex(/^-?\d{1,7}$/, "must be an integer")
  .transform(Number);
const size = z.string().transform((text, ctx) => {
  const bytes = parseSize(text);
  if (bytes === undefined || bytes < 4 << 10 || bytes > 64 << 20) {
    ctx.addIssue({ code: "custom", message: "must be a size from 4K to 64M" });
    return z.NEVER;
  }
  return bytes;
});

export const compressQuery = z.strictObject({
  codec: z
    .string()
    .refine((name) => codecNames().includes(name), { message: `must be one of ${codecNames().join(", ")}` })
    .optional(),
  level: integer.optional(),
  goal: z.enum(GOALS).optional(),
  chunkSize: size.optional(),
});

export const analyzeQuery = z.strictObject({
  level: integer.optional(),
  goal: z.enum(GOALS).optional(),
});

export const noQuery = z.strictObject({});

export function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.output<T> {
  const parsed = schema.safeParse(query ?? {});
  if (parsed.success) return parsed.data;
  const why = parsed.error.issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; ");
  throw new ServiceError(400, "E_BAD_OPTION", why);
}
