"""The benchmark operator for Python Kopf, with its best settings for throughput (labelled so).

The same handlers as kopf_single.py. Run from a venv with ``kopf[uvloop]`` (Kopf's CLI then runs
its loop on uvloop) and with ``kopf run --quiet`` (no per-object INFO log lines to format):
``kopf run --standalone --quiet -n <namespace> kopf_best.py``.
"""
import kopf


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_):
    # No K8s Events for the handlers' log messages or anything else.
    settings.posting.enabled = False
    # Serve the one known resource: no cluster-wide CRD and namespace observation.
    settings.scanning.disabled = True


@kopf.on.create('bench.kopf.dev', 'v1', 'benchobjects')
async def create_fn(spec, **_):
    return {'field': spec.get('field')}


@kopf.on.update('bench.kopf.dev', 'v1', 'benchobjects', field='spec.field')
async def update_fn(new, **_):
    return {'field': new}


@kopf.on.delete('bench.kopf.dev', 'v1', 'benchobjects')
async def delete_fn(**_):
    pass
