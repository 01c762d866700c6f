// The public API is deliberate: each entry point exports exactly the names listed here, and every
// export carries JSDoc with an example (which `deno task check` type-checks as a doc test). The
// export lists come from `deno doc --json`, the same view JSR and `deno doc --lint` have. Adding or
// removing a name means editing the list below on purpose. The suite shows both checks failing on
// a scratch module.

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

/** What `mod.ts` exports: Kopf's public names and the types in their signatures. */
const MOD = [
  "ABSENT",
  "Api",
  "ApiDeleteOptions",
  "ApiError",
  "ApiGetOptions",
  "ApiListOptions",
  "ApiObjectOptions",
  "ApiPatchOptions",
  "ApiWatchEvent",
  "ApiWriteOptions",
  "KubeStatus",
  "PatchType",
  "ResourceRef",
  "StatusDetails",
  "configure",
  "ConfigureOptions",
  "LogFormat",
  "LoginHelperOptions",
  "loginViaClient",
  "loginWithKubeconfig",
  "loginWithServiceAccount",
  "StopReasons",
  "Activity",
  "ActivityContext",
  "ActivityError",
  "ActivityFn",
  "ActivityOptions",
  "ActivityRegistrar",
  "adjustNamespace",
  "AdmissionError",
  "AdmissionSettings",
  "adopt",
  "AdoptOptions",
  "all",
  "all_",
  "AnnotationsDiffBaseStorage",
  "AnnotationsDiffBaseStorageOptions",
  "AnnotationsProgressStorage",
  "AnnotationsProgressStorageOptions",
  "any",
  "any_",
  "AnyFields",
  "appendOwnerReference",
  "Awaitable",
  "BackgroundSettings",
  "BaseContext",
  "Body",
  "BodyEssence",
  "buildObjectReference",
  "buildOwnerReference",
  "ChangeFilterOptions",
  "ChangingCauseContext",
  "ChangingContext",
  "ChangingFn",
  "ChangingReason",
  "ConnectionInfo",
  "ConnectionInfoFields",
  "copyMemo",
  "CreateOptions",
  "daemon",
  "DaemonContext",
  "DaemonFn",
  "DaemonOptions",
  "DaemonStopped",
  "defaultRegistry",
  "DeleteOptions",
  "Diff",
  "diff",
  "DiffBaseStorage",
  "execute",
  "ExecuteOptions",
  "DiffBaseStorageOptions",
  "DiffItem",
  "DiffOperation",
  "ErrorsMode",
  "event",
  "EventCauseContext",
  "EventContext",
  "EventFn",
  "EventOptions",
  "EventPostOptions",
  "EventSubject",
  "EventSubjects",
  "EventType",
  "EVERYTHING",
  "exception",
  "ExecutionSettings",
  "FieldOptions",
  "FieldPath",
  "FieldSpec",
  "FilterOptions",
  "HandlerRetriesError",
  "HandlerTimeoutError",
  "harmonizeNaming",
  "HierarchyObjects",
  "IdOptions",
  "Index",
  "index",
  "IndexContext",
  "IndexFn",
  "IndexOptions",
  "info",
  "JsonObject",
  "KubeObject",
  "label",
  "LabelOptions",
  "Lifecycle",
  "LifecycleContext",
  "lifecycles",
  "Logger",
  "Memo",
  "MEMO_COPY",
  "MetaFilter",
  "MetaFilterFn",
  "MetaPatch",
  "MetricsSettings",
  "MultiDiffBaseStorage",
  "MultiProgressStorage",
  "NamespaceOptions",
  "NamingOptions",
  "NestedFields",
  "NetworkingSettings",
  "none",
  "none_",
  "not",
  "not_",
  "ObjectMeta",
  "ObjectReference",
  "on",
  "OnApi",
  "OwnerBody",
  "OwnerReference",
  "OwnerReferenceOptions",
  "Patch",
  "PatchFn",
  "PeeringSettings",
  "PermanentError",
  "PersistenceSettings",
  "PostingSettings",
  "PRESENT",
  "ProcessSettings",
  "ProgressRecord",
  "ProgressStorage",
  "QueueingSettings",
  "RawBody",
  "register",
  "Registrar",
  "Registrars",
  "RegistrationHandler",
  "RegistrationKind",
  "RegistrationKinds",
  "RegistrationOptions",
  "Registry",
  "RegistryOption",
  "removeOwnerReference",
  "Resource",
  "ResourceContext",
  "ResourcePredicate",
  "ResumeOptions",
  "RetryContext",
  "RetryOptions",
  "run",
  "RunOptions",
  "sandboxKubeconfig",
  "ScanningSettings",
  "SelectorArg",
  "SelectorName",
  "SelectorSpec",
  "setDefaultRegistry",
  "Settings",
  "SmartProgressStorage",
  "SmartProgressStorageOptions",
  "SpawningOptions",
  "StatusDiffBaseStorage",
  "StatusDiffBaseStorageOptions",
  "StatusProgressStorage",
  "StatusProgressStorageOptions",
  "StopReason",
  "Store",
  "subhandler",
  "SubhandlerApi",
  "SubhandlerOptions",
  "TemporaryError",
  "TemporaryErrorOptions",
  "timer",
  "TimerContext",
  "TimerFn",
  "TimerOptions",
  "UpdateOptions",
  "ValueFilter",
  "ValueFilterFn",
  "ValueLiteral",
  "warn",
  "WatchingSettings",
  // Admission webhooks.
  "AdmissionContext",
  "AdmissionFn",
  "WebhookOptions",
  "AdmissionRequest",
  "AdmissionResponse",
  "AdmissionReview",
  "AdmissionStatus",
  "ClusterInfo",
  "Headers",
  "Operation",
  "ReviewKind",
  "ReviewResource",
  "SSLPeer",
  "UserInfo",
  "WebhookClientConfig",
  "WebhookClientConfigService",
  "WebhookError",
  "WebhookFn",
  "WebhookFnOptions",
  "WebhookServeContext",
  "WebhookServerProtocol",
  "WebhookAutoServer",
  "WebhookDockerDesktopServer",
  "WebhookK3dServer",
  "WebhookMinikubeServer",
  "WebhookServer",
  "WebhookServerOptions",
  "VerifyMode",
];

/** What `testing.ts` exports: Kopf's `kopf.testing`. */
const TESTING = ["KopfRunner", "KopfRunnerError", "KopfRunnerOptions", "WaitForOutputOptions"];

/** What `cli.ts` exports: the `kopf` command as a function. */
const CLI = ["main", "MainOptions", "VERSION"];

/** Names the issue found leaking from `mod.ts`; none of them is for operator authors. */
const INTERNALS = [
  "AnyHandlerFn",
  "ChangingHandler",
  "ChangingMatchCause",
  "countHandlers",
  "ErasedContext",
  "HandlerRecord",
  "HandlerSink",
  "KeyFormer",
  "MatchCause",
  "selectChangingHandlers",
  "Subhandlers",
];

interface DocSymbol {
  name: string;
  declarations: {
    kind: string;
    location: { filename: string; line: number };
    jsDoc?: { doc?: string; tags?: { kind: string }[] };
    def?: { target?: { filename: string; line: number } };
  }[];
}

/** The exported symbols of a module as `deno doc --json` sees them. */
async function exportsOf(module: string): Promise<DocSymbol[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", module],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: DocSymbol[] }>;
  };
  return Object.values(doc.nodes).flatMap((node) => node.symbols);
}

function sorted(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => a.localeCompare(b, "en") || (a < b ? -1 : 1));
}

/** Exports without an example: re-exports under another name count as their target. */
function withoutExamples(symbols: DocSymbol[]): string[] {
  const at = (location: { filename: string; line: number }) =>
    `${location.filename}:${location.line}`;
  const documented = new Set<string>();
  for (const symbol of symbols) {
    for (const declaration of symbol.declarations) {
      const { doc = "", tags = [] } = declaration.jsDoc ?? {};
      if (tags.some((tag) => tag.kind === "example") || doc.includes("```")) {
        documented.add(at(declaration.location));
      }
    }
  }
  return sorted(
    symbols.filter((symbol) =>
      !symbol.declarations.some((declaration) =>
        documented.has(at(declaration.def?.target ?? declaration.location))
      )
    ).map((symbol) => symbol.name),
  );
}

const ENTRY_POINTS: [string, string[]][] = [["mod.ts", MOD], ["testing.ts", TESTING], [
  "cli.ts",
  CLI,
]];

for (const [module, expected] of ENTRY_POINTS) {
  Deno.test(`${module} exports exactly its deliberate list, each with an example`, async () => {
    const symbols = await exportsOf(module);
    const names = symbols.map((symbol) => symbol.name);
    assert.deepEqual(names.filter((name) => INTERNALS.includes(name)), []);
    assert.deepEqual(sorted(names), sorted(expected));
    assert.deepEqual(withoutExamples(symbols), []);
  });
}

Deno.test("the example check on a scratch module: an alias is its target, a bare export fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const module = `${dir}/mod.ts`;
    await Deno.writeTextFile(
      module,
      [
        "/**",
        " * Documented.",
        " *",
        " * @example",
        " * ```ts",
        " * console.log(shown);",
        " * ```",
        " */",
        "export const shown = 1;",
        "/** No example. */",
        "export const bare = 2;",
        "export { shown as alias };",
        "",
      ].join("\n"),
    );
    const symbols = await exportsOf(module);
    assert.deepEqual(sorted(symbols.map((symbol) => symbol.name)), ["alias", "bare", "shown"]);
    assert.deepEqual(withoutExamples(symbols), ["bare"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
