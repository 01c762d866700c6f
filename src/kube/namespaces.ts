/**
 * Kopf's namespace patterns: which namespaces an operator serves.
 *
 * A pattern is comma-separated globs (`*`, `?`); a glob starting with `!` excludes. A pattern
 * whose first glob excludes starts from an implied `*`. The first inclusive glob decides the
 * initial match; exclusions un-match; later inclusive globs re-include only what the first one
 * matched. A namespace is served when any of the patterns matches it.
 *
 * @module
 */

function globToRegExp(glob: string): RegExp {
  let source = "";
  for (const ch of glob) {
    if (ch === "*") source += ".*";
    else if (ch === "?") source += ".";
    else source += ch.replace(/[.+^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

function globMatch(name: string, glob: string): boolean {
  return globToRegExp(glob).test(name);
}

/**
 * Whether a namespace matches one pattern (Kopf's `match_namespace`).
 *
 * @example
 * ```ts
 * import { matchNamespace } from "./namespaces.ts";
 * matchNamespace("myapp-pr-123", "myapp-*, !*-pr-*, *pr-123"); // true
 * matchNamespace("myapp-pr-456", "myapp-*, !*-pr-*, *pr-123"); // false
 * matchNamespace("other", "!kube-*"); // true
 * ```
 */
export function matchNamespace(name: string, pattern: string | RegExp): boolean {
  if (pattern instanceof RegExp) {
    const match = pattern.exec(name);
    return match !== null && match.index === 0 && match[0].length === name.length;
  }
  const globs = pattern.split(",").map((glob) => glob.trim());
  if (!globs.length || globs[0].startsWith("!")) globs.unshift("*");
  const first = globMatch(name, globs[0]);
  let matches = first;
  for (const glob of globs.slice(1)) {
    if (glob.startsWith("!")) {
      matches = matches && !globMatch(name, glob.replace(/^!+/, ""));
    } else {
      matches = matches || (first && globMatch(name, glob));
    }
  }
  return matches;
}

/** Whether a namespace matches any of the patterns. */
export function matchNamespaces(name: string, patterns: readonly (string | RegExp)[]): boolean {
  return patterns.some((pattern) => matchNamespace(name, pattern));
}

/**
 * The patterns that are plain namespace names (no globs, negations or lists): when all
 * patterns are, the operator watches those namespaces directly, without watching namespaces.
 */
export function specificNamespaces(patterns: readonly (string | RegExp)[]): string[] | null {
  const names: string[] = [];
  for (const pattern of patterns) {
    if (typeof pattern !== "string" || /[!*?,]/.test(pattern)) return null;
    names.push(pattern.trim());
  }
  return [...new Set(names)];
}
