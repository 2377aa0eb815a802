/** What open() and inspect() read: a path, a file: URL, or an http(s) URL. */
import { fileURLToPath } from "node:url";
import { MmhError } from "../common/errors.ts";
import { fileSource, type RandomAccessSource } from "../common/source.ts";
import { type HttpOptions, httpSource, isHttpTarget, urlLabel } from "./http.ts";

/** A source for `target` and the name errors give it. */
export async function targetSource(
  target: string | URL,
  options: HttpOptions = {},
): Promise<{ source: RandomAccessSource; label: string }> {
  if (isHttpTarget(target)) {
    const source = await httpSource(target, options);
    return { source, label: urlLabel(new URL(target)) };
  }
  if (target instanceof URL) {
    if (target.protocol !== "file:")
      throw new MmhError("E_BAD_OPTION", `${target.protocol} URLs are not read (http, https and file are)`);
    const path = fileURLToPath(target);
    return { source: await fileSource(path), label: path };
  }
  if (typeof target !== "string")
    throw new MmhError(
      "E_BAD_OPTION",
      `a path or URL is read, not ${target === null ? "null" : typeof target === "object" ? ((target as object).constructor?.name ?? "an object") : typeof target}`,
    );
  return { source: await fileSource(target), label: target };
}
