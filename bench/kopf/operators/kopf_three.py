"""The benchmark operator for Python Kopf with three create handlers (plus update and delete).

Run with Kopf's defaults: `kopf run --standalone -n <namespace> kopf_three.py`.
"""
import kopf


@kopf.on.create('bench.kopf.dev', 'v1', 'benchobjects')
async def create_fn_1(spec, **_):
    return {'field': spec.get('field')}


@kopf.on.create('bench.kopf.dev', 'v1', 'benchobjects')
async def create_fn_2(spec, **_):
    return {'field': spec.get('field')}


@kopf.on.create('bench.kopf.dev', 'v1', 'benchobjects')
async def create_fn_3(spec, **_):
    return {'field': spec.get('field')}


@kopf.on.update('bench.kopf.dev', 'v1', 'benchobjects', field='spec.field')
async def update_fn(new, **_):
    return {'field': new}


@kopf.on.delete('bench.kopf.dev', 'v1', 'benchobjects')
async def delete_fn(**_):
    pass
