/**
 * What admission handlers (`kopf.on.validate`, `kopf.on.mutate`) receive — Kopf's kwargs of
 * webhooks by their names — and what their registrations accept (Kopf's options, camel-cased).
 *
 * @module
 */

import type { SelectorSpec } from "../kube/selector.ts";
import type { Diff } from "../storage/diff.ts";
import type { Headers, Operation, SSLPeer, UserInfo } from "../storage/reviews.ts";
import type {
  AnyFields,
  Awaitable,
  Body,
  FilterOptions,
  IdOptions,
  RegistryOption,
  ResourceContext,
} from "./context.ts";

/**
 * What validating and mutating handlers get: the object under admission (the new one, or the old
 * one for DELETE) with Kopf's usual kwargs, the admission's own (`operation`, `dryrun`, …), and
 * `warnings` to push admission warnings into. Mutating handlers change the object through
 * `patch`; their changes are sent back as a JSON patch.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * function checkSize({ spec, warnings, dryrun }: kopf.AdmissionContext<{ size?: number }>) {
 *   if ((spec.size ?? 1) < 1) throw new kopf.AdmissionError("size must be positive", { code: 400 });
 *   if (!dryrun && spec.size === undefined) warnings.push("size defaults to 1");
 * }
 * kopf.on.validate<{ size?: number }>("kopfexamples", checkSize);
 * ```
 */
export interface AdmissionContext<S = AnyFields, St = AnyFields> extends ResourceContext<S, St> {
  /** The object before the operation (UPDATE, DELETE). */
  old: Body<S, St> | undefined;
  /** The object after the operation (CREATE, UPDATE). */
  new: Body<S, St> | undefined;
  /** What the operation changes (from `old` to `new`). */
  diff: Diff;
  /** The operation under admission. */
  operation: Operation;
  /** A dry run (`dryRun=All`): nothing is persisted; make no side effects. */
  dryrun: boolean;
  /** The subresource (`status`, `scale`, …); `undefined` for the main resource. */
  subresource: string | undefined;
  /** Who makes the API request. */
  userinfo: UserInfo;
  /** The verified client certificate of the webhook request (`{}` if none). */
  sslpeer: SSLPeer;
  /** The HTTP headers of the webhook request (lower-case names). */
  headers: Headers;
  /** Admission warnings to return to the user: push strings. */
  warnings: string[];
}

/**
 * A validating or mutating handler. It admits by returning, rejects by throwing
 * (`kopf.AdmissionError` with a message and an HTTP code; anything else rejects with 500); its
 * return value is ignored.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const defaults: kopf.AdmissionFn = ({ spec, patch }) => {
 *   if (spec.numbers === undefined) patch.spec.numbers = [1, 2, 3];
 * };
 * kopf.on.mutate("kopfexamples", defaults);
 * ```
 */
export type AdmissionFn<S = AnyFields, St = AnyFields> = (
  context: AdmissionContext<S, St>,
) => Awaitable<unknown>;

/**
 * Options of `on.validate` and `on.mutate`. Label filters (strings, `PRESENT`, `ABSENT`) also go
 * to the webhook's `objectSelector`, so that the API server does not even call for objects they
 * exclude; the other filters are checked when a request arrives (a request they exclude is
 * admitted without calling the handler).
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * const options: kopf.WebhookOptions = {
 *   operations: ["CREATE", "UPDATE"],
 *   labels: { tier: "db" },
 *   ignoreFailures: true, // admit when the operator is down or the handler fails
 *   timeout: 5,
 * };
 * kopf.on.validate("kopfexamples", options, function checkFn({ spec }) {
 *   if (!spec.size) throw new kopf.AdmissionError("spec.size is required", { code: 422 });
 * });
 * ```
 */
export interface WebhookOptions<S = AnyFields, St = AnyFields>
  extends SelectorSpec, IdOptions, RegistryOption, FilterOptions<AdmissionContext<S, St>> {
  /** The one operation to call it for (Kopf's older `operation`); default: all. */
  operation?: Operation;
  /** The operations to call it for; default: all. */
  operations?: readonly Operation[];
  /** The subresource to call it for (`"status"`, `"scale"`, `"*"` for any and the main one). */
  subresource?: string;
  /** Keep its webhook in the managed configurations when the operator exits. */
  persistent?: boolean;
  /** It has side effects outside dry runs (`sideEffects: NoneOnDryRun`). */
  sideEffects?: boolean;
  /**
   * Admit when the webhook fails: the operator is unreachable, or the handler does not answer in
   * time (`failurePolicy: Ignore`). A handler that throws still rejects, as in Kopf.
   */
  ignoreFailures?: boolean;
  /**
   * Seconds the API server waits for the answer (`timeoutSeconds`, 1–30; default 30, as Kopf).
   * A handler still running just before then is cut, and the answer follows `ignoreFailures`.
   */
  timeout?: number;
}
