/**
 * Reads the chaos operators' journal (written by `fixtures/journal.ts`): one JSON line per
 * handler call, from every operator process of a scenario, in the order the calls started.
 *
 * @module
 */
import type { JournalLine } from "./fixtures/journal.ts";

export type { JournalLine };

/** The journal as read back. */
export interface Journal {
  /** Complete lines, in file order. */
  calls: JournalLine[];
  /** Lines that were not complete JSON (a SIGKILL cannot tear a single write; expected 0). */
  torn: number;
}

/** Reads the journal at `path`; a missing file is an empty journal. */
export async function readJournal(path: string): Promise<Journal> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const calls: JournalLine[] = [];
  let torn = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      calls.push(JSON.parse(line));
    } catch {
      torn++;
    }
  }
  return { calls, torn };
}

/** The journal's size in bytes (0 if it does not exist yet): grows with every call. */
export async function journalSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}
