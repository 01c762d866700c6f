# The benchmark's operator (Python Kopf 1.45): one trivial validating handler, its WebhookServer
# on the certificate files bench/admission_bench.ts generated (no certbuilder extra needed).
import os

import kopf


@kopf.on.startup()
def config(settings: kopf.OperatorSettings, **_):
    settings.admission.server = kopf.WebhookServer(
        addr="127.0.0.1",
        port=int(os.environ["BENCH_WEBHOOK_PORT"]),
        certfile=os.environ["BENCH_CERT_FILE"],
        pkeyfile=os.environ["BENCH_KEY_FILE"],
        cafile=os.environ["BENCH_CA_FILE"],
    )
    settings.admission.managed = os.environ["BENCH_MANAGED"]


@kopf.on.validate(os.environ["BENCH_PLURAL"])
async def check_fn(spec, **_):
    if spec.get("reject") is True:
        raise kopf.AdmissionError("rejected", code=400)
