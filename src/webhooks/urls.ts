/**
 * Webhook server URLs: the `--webhook-server` flag's parts and the paths of webhooks. Kept apart
 * from the servers so that the CLI checks the flag without loading them.
 *
 * @module
 */

/** A path prefix as the servers use it: `""` or `/something`, without a trailing slash. */
export function normalizedPath(path: string | undefined): string {
  if (!path) return "";
  const trimmed = path.replace(/\/+$/, "");
  return trimmed && !trimmed.startsWith("/") ? `/${trimmed}` : trimmed;
}

/** The parts of a `--webhook-server` URL; a TypeError names what is wrong with it. */
export function parseServerUrl(
  url: string,
): { scheme: "http" | "https"; hostname: string; port: number; path: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${url}`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new TypeError(`a webhook server URL must be https:// or http://, not ${url}`);
  }
  if (!parsed.port) throw new TypeError(`a webhook server URL needs a port: ${url}`);
  if (parsed.search || parsed.hash || parsed.username) {
    throw new TypeError(`a webhook server URL has no query, fragment or user: ${url}`);
  }
  return {
    scheme: parsed.protocol === "https:" ? "https" : "http",
    hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: Number(parsed.port),
    path: normalizedPath(parsed.pathname),
  };
}
