// The benchmark operator for controller-runtime: the same semantics as bench/kopf's operators
// (one create, one update on spec.field, one non-optional delete "handler"), written the way a
// small controller-runtime operator is, so that `deno task bench:peers` can put it next to Kopf
// and ours.
//
// For each BenchObject (bench.kopf.dev/v1) in --namespace, watched as unstructured objects:
//   - a finalizer is added before the create work (as Kopf does for a non-optional delete handler);
//   - create: when status.create_fn is absent, status.create_fn = {"field": spec.field} is written
//     through the status subresource;
//   - update: when spec.field differs from the value last handled, status["update_fn/spec.field"] =
//     {"field": spec.field} is written (Kopf's handler id, which the benchmark's observer reads);
//   - delete: when deletionTimestamp is set, the finalizer is removed.
//
// Three writes per object for create+delete (finalizer add, status, finalizer removal), one more
// per update. The informer cache can lag behind the operator's own writes (a reconcile triggered
// by the finalizer's own watch event may still see no status); the reconciler keeps what it wrote
// per object in memory — as the floor does — so that a stale read never repeats a write.
//
// Usage:
//
//	kopf-bench-ctrlrt --kubeconfig FILE --namespace NS [--workers 1]
//
// Metrics and health probes are off, leader election is off, logging is at error level. The
// client's rate limiter is controller-runtime's default (off: it relies on API Priority and
// Fairness). Reads come from the informer cache (for unstructured objects controller-runtime
// would otherwise GET from the API server on every reconcile).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"

	"go.uber.org/zap/zapcore"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// finalizer holds the objects until the delete "handler" has run.
const finalizer = "bench.kopf.dev/ctrlrt-finalizer"

// updateKey is the status key of the update result: Kopf's id for an update handler on a field.
const updateKey = "update_fn/spec.field"

var gvk = schema.GroupVersionKind{Group: "bench.kopf.dev", Version: "v1", Kind: "BenchObject"}

// memory is what the reconciler wrote for one object (by name; reset when the uid changes).
type memory struct {
	uid              types.UID
	finalizerAdded   bool
	finalizerRemoved bool
	created          bool
	handledField     any
}

type reconciler struct {
	client client.Client
	mu     sync.Mutex
	seen   map[types.NamespacedName]*memory
}

func (r *reconciler) memoryOf(key types.NamespacedName, uid types.UID) *memory {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.seen[key]
	if m == nil || m.uid != uid {
		m = &memory{uid: uid}
		r.seen[key] = m
	}
	return m
}

func (r *reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, key)
}

func jsonPatch(ops ...map[string]any) client.Patch {
	data, _ := json.Marshal(ops)
	return client.RawPatch(types.JSONPatchType, data)
}

func statusPatch(key string, field any) client.Patch {
	data, _ := json.Marshal(map[string]any{"status": map[string]any{key: map[string]any{"field": field}}})
	return client.RawPatch(types.MergePatchType, data)
}

// Reconcile does the writes the object needs now. The workqueue never hands one key to two
// workers at once, so one object's memory is only touched by one reconcile at a time.
func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	m := r.memoryOf(req.NamespacedName, obj.GetUID())
	finalizers := obj.GetFinalizers()
	index := -1
	for i, f := range finalizers {
		if f == finalizer {
			index = i
		}
	}

	if obj.GetDeletionTimestamp() != nil {
		if index >= 0 && !m.finalizerRemoved {
			// The test op makes the removal safe against a concurrent change of the list.
			path := fmt.Sprintf("/metadata/finalizers/%d", index)
			patch := jsonPatch(
				map[string]any{"op": "test", "path": path, "value": finalizer},
				map[string]any{"op": "remove", "path": path},
			)
			if err := r.client.Patch(ctx, obj, patch); err != nil {
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			m.finalizerRemoved = true
		}
		return ctrl.Result{}, nil
	}

	if index < 0 && !m.finalizerAdded {
		op := map[string]any{"op": "add", "path": "/metadata/finalizers/-", "value": finalizer}
		if finalizers == nil {
			op = map[string]any{"op": "add", "path": "/metadata/finalizers", "value": []string{finalizer}}
		}
		if err := r.client.Patch(ctx, obj, jsonPatch(op)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		m.finalizerAdded = true
	}

	field, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "field")
	status, _, _ := unstructured.NestedMap(obj.Object, "status")
	if !m.created {
		// Not written by this process: the status tells what was handled (e.g. after a restart).
		if done, ok := status["create_fn"].(map[string]any); ok {
			m.created = true
			m.handledField = done["field"]
			if upd, ok := status[updateKey].(map[string]any); ok {
				m.handledField = upd["field"]
			}
		}
	}
	if !m.created {
		if err := r.client.Status().Patch(ctx, obj, statusPatch("create_fn", field)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		m.created, m.handledField = true, field
	} else if field != m.handledField {
		if err := r.client.Status().Patch(ctx, obj, statusPatch(updateKey, field)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		m.handledField = field
	}
	return ctrl.Result{}, nil
}

func main() {
	// --kubeconfig is registered by controller-runtime's config package (ctrl.GetConfig reads it).
	namespace := flag.String("namespace", "", "the namespace to watch (required)")
	workers := flag.Int("workers", 1, "MaxConcurrentReconciles (controller-runtime's default is 1)")
	flag.Parse()
	if *namespace == "" {
		fmt.Fprintln(os.Stderr, "kopf-bench-ctrlrt: --namespace is required")
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kopf-bench-ctrlrt: kubeconfig: %v\n", err)
		os.Exit(1)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{*namespace: {}}},
		// controller-runtime reads unstructured objects from the API server unless told to use
		// the informer cache it already keeps for the watch: one GET per reconcile otherwise.
		Client:                 client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "kopf-bench-ctrlrt: manager: %v\n", err)
		os.Exit(1)
	}
	watched := &unstructured.Unstructured{}
	watched.SetGroupVersionKind(gvk)
	r := &reconciler{client: mgr.GetClient(), seen: map[types.NamespacedName]*memory{}}
	err = ctrl.NewControllerManagedBy(mgr).
		For(watched).
		Named("benchobject").
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers}).
		Complete(r)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kopf-bench-ctrlrt: controller: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "kopf-bench-ctrlrt: watching %s in %s with %d worker(s)\n",
		gvk.Kind, *namespace, *workers)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintf(os.Stderr, "kopf-bench-ctrlrt: %v\n", err)
		os.Exit(1)
	}
}
