/**
 * Base64 of text (as UTF-8) or bytes: kubeconfig data fields, `caBundle`s, admission JSON
 * patches. `btoa()` takes only Latin-1 strings, so the bytes go through it in chunks (a spread of
 * a whole large array would overflow the call stack).
 *
 * @module
 */

/**
 * The standard base64 of `data` (a string is encoded as UTF-8 first).
 *
 * @example
 * ```ts
 * import { base64 } from "./base64.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(base64("user:pässword"), "dXNlcjpww6Rzc3dvcmQ=");
 * assert.equal(base64(new Uint8Array([0, 255])), "AP8=");
 * ```
 */
export function base64(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}
