"""The benchmark operator for Python Kopf: one create, one update (on a spec field), one delete.

Run with Kopf's defaults: `kopf run --standalone -n <namespace> kopf_single.py`.
Handlers are `async def` so that Kopf is not measured through its thread pool.
"""
import kopf


@kopf.on.create('bench.kopf.dev', 'v1', 'benchobjects')
async def create_fn(spec, **_):
    return {'field': spec.get('field')}


@kopf.on.update('bench.kopf.dev', 'v1', 'benchobjects', field='spec.field')
async def update_fn(new, **_):
    return {'field': new}


@kopf.on.delete('bench.kopf.dev', 'v1', 'benchobjects')
async def delete_fn(**_):
    pass
