/**
 * The raw inputs of a configuration — environment variables, PEM files and data, server URLs,
 * relative paths — read with one-line {@linkcode ConfigError}s that name where each came from.
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

/** An environment variable (`undefined` when unset or empty); a missing grant is a ConfigError. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch (error) {
    throw new ConfigError(
      `cannot read the environment variable ${name}: ${
        error instanceof Error ? error.message : error
      } (grant --allow-env=${name}, or pass the kubeconfig explicitly)`,
      { cause: error },
    );
  }
}

/** `server` if it is an http(s) URL, without trailing slashes. */
export function checkServer(server: string, source: string, field: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new ConfigError(`not a URL: ${JSON.stringify(server)}`, { source, field });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(`unsupported scheme ${url.protocol} in ${server}`, { source, field });
  }
  return server.replace(/\/+$/, "");
}

/**
 * A PEM block (`expect`: `CERTIFICATE`, `PRIVATE KEY`) from a file or from base64 `data` (the
 * kubeconfig's `…-data` fields); `undefined` when neither is given.
 */
export async function pemFrom(init: {
  file?: string;
  data?: string;
  source: string;
  field: string;
  expect: string;
}): Promise<string | undefined> {
  let pem: string;
  if (init.file) {
    try {
      pem = await Deno.readTextFile(init.file);
    } catch (error) {
      throw new ConfigError(`cannot read ${init.file}: ${fileError(error)}`, {
        source: init.source,
        field: init.field,
        cause: error,
      });
    }
  } else if (init.data) {
    try {
      pem = new TextDecoder().decode(Uint8Array.from(atob(init.data), (c) => c.charCodeAt(0)));
    } catch (error) {
      throw new ConfigError("is not valid base64", {
        source: init.source,
        field: `${init.field}-data`,
        cause: error,
      });
    }
  } else {
    return undefined;
  }
  if (!pem.includes(`${init.expect}-----`)) {
    throw new ConfigError(`holds no PEM ${init.expect}`, {
      source: init.source,
      field: init.file ? init.field : `${init.field}-data`,
    });
  }
  return pem;
}

/** A kubeconfig path made absolute against the kubeconfig's directory (as makePathsAbsolute). */
export function absolute(dir: string, path: unknown): string | undefined {
  if (typeof path !== "string" || !path) return undefined;
  if (path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path)) return path;
  // `dir` + the relative path, with `.` and `..` segments resolved.
  const parts: string[] = [];
  for (const part of `${dir}/${path}`.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return (dir.startsWith("/") ? "/" : "") + parts.join("/");
}

/** Explains a failed file read in a few words (and which permission is missing, if any). */
export function fileError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return `${oneLine(error.message)} (grant --allow-read for it)`;
  }
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  return oneLine(String(error instanceof Error ? error.message : error));
}

/** `text` on one line, at most 300 characters (for messages quoting a tool's output). */
export function oneLine(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
