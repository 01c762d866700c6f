/**
 * Kopf for Deno: Kubernetes operators in TypeScript with Kopf's ergonomics.
 *
 * Handlers are registered Kopf-style — selector first, options optional, handler last — and
 * receive one context object with Kopf's kwargs by their names. Their state (progress, the
 * last handled essence) is kept on the objects in Kopf's own formats, so objects handled by a
 * Python Kopf operator carry over.
 *
 * @example
 * ```ts
 * import * as kopf from "@kopf/kopf";
 *
 * kopf.on.create("kopfexamples", async ({ spec, name, logger }) => {
 *   logger.info(`And here we are! Created ${name} with spec: ${JSON.stringify(spec)}`);
 *   return { message: "hello" }; // stored in status.<handler id>
 * });
 *
 * kopf.on.update(
 *   "kopf.dev/v1",
 *   "kopfexamples",
 *   { field: "spec.size", labels: { app: kopf.PRESENT } },
 *   ({ old, new: value, diff }) => {},
 * );
 *
 * kopf.on.delete("kopfexamples", { optional: false }, async ({ name }) => {});
 * ```
 *
 * @module
 */

// The public face, by Kopf's (`kopf/__init__.py`): what an operator author writes against —
// registration, filters, errors, events, hierarchies, settings, storages, `run` — plus every type
// that appears in those signatures (`deno doc --lint` insists on it, and a reader needs them).
// Handler records, matching, the cycle's machinery and the client stay in src/: tests and tools
// import them from there, so they can change without breaking anyone's operator.

// Registration.
export {
  daemon,
  defaultRegistry,
  index,
  on,
  Registry,
  setDefaultRegistry,
  timer,
} from "./src/registry/registry.ts";
export { execute, type ExecuteOptions, register, subhandler } from "./src/registry/subhandlers.ts";
export {
  ABSENT,
  all,
  all as all_,
  any,
  any as any_,
  type MetaFilter,
  type MetaFilterFn,
  none,
  none as none_,
  not,
  not as not_,
  PRESENT,
  type ValueFilter,
  type ValueFilterFn,
  type ValueLiteral,
} from "./src/registry/filters.ts";
export type { ErrorsMode } from "./src/registry/records.ts";
export type {
  ActivityRegistrar,
  OnApi,
  Registrar,
  Registrars,
  RegistrationHandler,
  RegistrationKind,
  RegistrationKinds,
  RegistrationOptions,
  SelectorName,
} from "./src/registry/registrars.ts";
export type {
  Activity,
  ActivityContext,
  ActivityFn,
  ActivityOptions,
  AnyFields,
  Awaitable,
  BaseContext,
  Body,
  ChangeFilterOptions,
  ChangingCauseContext,
  ChangingContext,
  ChangingFn,
  ChangingReason,
  CreateOptions,
  DaemonContext,
  DaemonFn,
  DaemonOptions,
  DaemonStopped,
  DeleteOptions,
  EventCauseContext,
  EventContext,
  EventFn,
  EventOptions,
  EventType,
  FieldOptions,
  FilterOptions,
  IdOptions,
  IndexContext,
  IndexFn,
  IndexOptions,
  Logger,
  Memo,
  RegistryOption,
  ResourceContext,
  ResumeOptions,
  RetryContext,
  RetryOptions,
  SpawningOptions,
  StopReason,
  StopReasons,
  SubhandlerApi,
  SubhandlerOptions,
  TimerContext,
  TimerFn,
  TimerOptions,
  UpdateOptions,
} from "./src/registry/context.ts";

// Resources.
export {
  EVERYTHING,
  type ResourcePredicate,
  type SelectorArg,
  type SelectorSpec,
} from "./src/kube/selector.ts";
export type { KubeObject, ObjectMeta, Resource } from "./src/kube/resource.ts";

// Errors.
export {
  AdmissionError,
  HandlerRetriesError,
  HandlerTimeoutError,
  PermanentError,
  TemporaryError,
  type TemporaryErrorOptions,
} from "./src/actions/errors.ts";

// What handlers read and write.
export { type Diff, diff, type DiffItem, type DiffOperation } from "./src/storage/diff.ts";
export { type MetaPatch, Patch, type PatchFn } from "./src/storage/patch.ts";
export type { FieldPath, FieldSpec, JsonObject, RawBody } from "./src/storage/fields.ts";

// Calling the Kubernetes API from handlers (`api` in their contexts).
export {
  Api,
  type ApiDeleteOptions,
  type ApiGetOptions,
  type ApiListOptions,
  type ApiObjectOptions,
  type ApiPatchOptions,
  type ApiWatchEvent,
  type ApiWriteOptions,
  type ResourceRef,
} from "./src/kits/api.ts";
export { ApiError, type KubeStatus, type StatusDetails } from "./src/kube/errors.ts";
export type { PatchType } from "./src/kube/client.ts";

// Admission webhooks (kopf.on.validate / kopf.on.mutate and their servers).
export type { AdmissionContext, AdmissionFn, WebhookOptions } from "./src/registry/admission.ts";
export {
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReview,
  type AdmissionStatus,
  type ClusterInfo,
  type Headers,
  type Operation,
  type ReviewKind,
  type ReviewResource,
  type SSLPeer,
  type UserInfo,
  type WebhookClientConfig,
  type WebhookClientConfigService,
  WebhookError,
  type WebhookFn,
  type WebhookFnOptions,
  type WebhookServeContext,
  type WebhookServerProtocol,
} from "./src/storage/reviews.ts";
export {
  WebhookAutoServer,
  WebhookDockerDesktopServer,
  WebhookK3dServer,
  WebhookMinikubeServer,
  WebhookServer,
  type WebhookServerOptions,
} from "./src/webhooks/servers.ts";
export type { VerifyMode } from "./src/webhooks/listening.ts";

// Running an operator.
export { run, type RunOptions } from "./src/reactor/running.ts";
export { configure, type ConfigureOptions, type LogFormat } from "./src/actions/logging.ts";

// Indexes, memos, activities and credentials (daemons, timers, indexes: see src/engines/).
export { Index, Store } from "./src/engines/indexes.ts";
export { copyMemo, MEMO_COPY } from "./src/handling/memos.ts";
export { ActivityError } from "./src/engines/activities.ts";
export { ConnectionInfo, type ConnectionInfoFields } from "./src/engines/login.ts";
export {
  type LoginHelperOptions,
  loginViaClient,
  loginWithKubeconfig,
  loginWithServiceAccount,
} from "./src/engines/piggybacking.ts";
export { sandboxKubeconfig } from "./src/kube/config/mod.ts";

// Kubernetes Events about objects.
export { event, type EventPostOptions, exception, info, warn } from "./src/actions/posting.ts";
export type { EventSubject, EventSubjects } from "./src/kube/events.ts";

// Settings, lifecycles, storages.
export {
  AdmissionSettings,
  BackgroundSettings,
  ExecutionSettings,
  MetricsSettings,
  NetworkingSettings,
  PeeringSettings,
  PersistenceSettings,
  PostingSettings,
  ProcessSettings,
  QueueingSettings,
  ScanningSettings,
  Settings,
  WatchingSettings,
} from "./src/settings/settings.ts";
export * as lifecycles from "./src/settings/lifecycles.ts";
export type { Lifecycle, LifecycleContext } from "./src/settings/lifecycles.ts";
export {
  AnnotationsProgressStorage,
  type AnnotationsProgressStorageOptions,
  MultiProgressStorage,
  type ProgressRecord,
  ProgressStorage,
  SmartProgressStorage,
  type SmartProgressStorageOptions,
  StatusProgressStorage,
  type StatusProgressStorageOptions,
} from "./src/storage/progress.ts";
export {
  AnnotationsDiffBaseStorage,
  type AnnotationsDiffBaseStorageOptions,
  type BodyEssence,
  DiffBaseStorage,
  type DiffBaseStorageOptions,
  MultiDiffBaseStorage,
  StatusDiffBaseStorage,
  type StatusDiffBaseStorageOptions,
} from "./src/storage/diffbase.ts";

// Hierarchies (Kopf's kopf.adopt() & co).
export {
  adjustNamespace,
  adopt,
  type AdoptOptions,
  appendOwnerReference,
  buildObjectReference,
  buildOwnerReference,
  harmonizeNaming,
  type HierarchyObjects,
  label,
  type LabelOptions,
  type NamespaceOptions,
  type NamingOptions,
  type NestedFields,
  type ObjectReference,
  type OwnerBody,
  type OwnerReference,
  type OwnerReferenceOptions,
  removeOwnerReference,
} from "./src/kits/hierarchies.ts";
