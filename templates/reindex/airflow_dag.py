"""Airflow DAG: weekly full rebuild of a Qdrant collection with ``qdrant-beam reindex``.

``--mode rebuild`` writes every record into a new collection version and switches the alias to
it when the write is complete, so searches never see a half-built collection; old versions are
dropped after ``--grace-seconds`` (``--keep-versions`` are kept for rollback). The nightly
incremental runs are the Kubernetes CronJob in ``cronjob.yaml``; this weekly rebuild also picks
up spec changes (a new model, another MRL size) that an incremental run cannot.

Both tasks run in the image built by ``templates/dataflow/`` (qdrant-beam installed, models in
``/models``), as pods through ``KubernetesPodOperator`` (``apache-airflow-providers-cncf-
kubernetes``). Keys come from the Kubernetes Secret ``qdrant-beam-secrets`` as environment
variables; nothing secret is in this file or in the Airflow metadata database.

To run the rebuild on Dataflow instead of inside the pod, replace ``--runner FnApiRunner`` in
``REBUILD_ARGS`` with ``--runner DataflowRunner --project P --region R --temp_location
gs://B/temp --sdk_container_image IMAGE``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from kubernetes.client import models as k8s

IMAGE = "europe-west1-docker.pkg.dev/my-project/qdrant-beam/qdrant-beam:v0.1.0"
NAMESPACE = "qdrant-beam"
SPEC = "/template/specs/text-dense-bm25-mrl.yaml"

#: ``qdrant-beam validate SPEC``: fails fast (seconds) on a broken spec, before any work.
VALIDATE_ARGS = ["validate", SPEC]

#: ``qdrant-beam reindex --mode rebuild ...``; a plain literal list, so it can be checked.
REBUILD_ARGS = [
    "reindex",
    "--mode",
    "rebuild",
    "--grace-seconds",
    "600",
    "--keep-versions",
    "1",
    "--spec",
    SPEC,
    "--input",
    "gs://my-bucket/articles/*.jsonl",
    "--qdrant-url",
    "http://qdrant.qdrant.svc.cluster.local:6333",
    "--qdrant-api-key-env",
    "QDRANT_API_KEY",
    "--collection",
    "articles",
    "--dead-letter",
    "gs://my-bucket/dead-letters/articles/rebuild-{{ ds_nodash }}",
    "--cache-size",
    "10000",
    "--progress-interval",
    "60",
    "--runner",
    "FnApiRunner",
]

SECRETS = [
    Secret("env", "QDRANT_API_KEY", "qdrant-beam-secrets", "qdrant-api-key"),
]

ENV_VARS = {
    "QDRANT_BEAM_MODELS": "/models",
    "HF_HUB_OFFLINE": "1",
}

with DAG(
    dag_id="qdrant_beam_weekly_rebuild",
    description="Weekly full rebuild of the articles collection behind its alias",
    schedule="0 3 * * 0",  # Sundays at 03:00
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,  # never two rebuilds at once
    default_args={"owner": "search", "retries": 0},
    tags=["qdrant", "beam"],
) as dag:
    validate = KubernetesPodOperator(
        task_id="validate_spec",
        name="qdrant-beam-validate",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["qdrant-beam"],
        arguments=VALIDATE_ARGS,
        env_vars=ENV_VARS,
        get_logs=True,
        execution_timeout=timedelta(minutes=5),
    )
    rebuild = KubernetesPodOperator(
        task_id="reindex_rebuild",
        name="qdrant-beam-rebuild",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["qdrant-beam"],
        arguments=REBUILD_ARGS,
        env_vars=ENV_VARS,
        secrets=SECRETS,
        service_account_name="qdrant-beam",
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "2", "memory": "4Gi"}, limits={"memory": "8Gi"}
        ),
        get_logs=True,
        execution_timeout=timedelta(hours=12),
    )
    validate >> rebuild
