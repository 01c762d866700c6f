/**
 * What a handling cycle works with, given by the operator loop (one per operator), and the one
 * object logger it makes from it (posting Events when `settings.posting.loggers` is on).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { objectLogger } from "../actions/loggers.ts";
import type { EventPoster } from "../kube/events.ts";
import type { Api } from "../kits/api.ts";
import type { KubeClient } from "../kube/client.ts";
import type { Registry } from "../registry/registry.ts";
import type { Settings } from "../settings/settings.ts";
import type { RawBody } from "../storage/fields.ts";
import type { BackgroundEngine } from "./contracts.ts";
import type { Memories } from "./memories.ts";

/** What the cycle works with (one per operator). */
export interface CycleEnvironment {
  /** The API client (only patch and get are used). */
  readonly client: Pick<KubeClient, "patch" | "get">;
  /** The handlers. */
  readonly registry: Registry;
  /** The settings. */
  readonly settings: Settings;
  /** Per-object memories. */
  readonly memories: Memories;
  /** Where object loggers post Events when `settings.posting.loggers` is on. */
  readonly poster?: Pick<EventPoster, "event">;
  /** The operator's indexes, by id. */
  readonly indices?: () => Readonly<Record<string, unknown>>;
  /** The API for handlers (`api` in their contexts). */
  readonly api?: Api;
  /** Resolves once handlers may run (every index complete); none: at once. */
  readonly whenReady?: () => Promise<void>;
  /** Background engines taking part in every cycle. */
  readonly engines?: readonly Pick<BackgroundEngine, "cycle">[];
}

/** The logger of an object, posting to Events if the settings say so. */
export function loggerFor(env: CycleEnvironment, body: RawBody): Logger {
  return objectLogger(body, { posting: { settings: env.settings.posting, poster: env.poster } });
}
