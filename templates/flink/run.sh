#!/usr/bin/env bash
# Run `qdrant-beam ingest` on Apache Flink through Beam's portable Flink runner.
#
#   templates/flink/run.sh job-server    start Beam's Flink job server (docker, host network)
#   templates/flink/run.sh worker-pool   start a Python SDK worker pool (EXTERNAL environment)
#   templates/flink/run.sh portable      submit with --runner PortableRunner (default)
#   templates/flink/run.sh flinkrunner   submit with --runner FlinkRunner (no separate job server)
#   templates/flink/run.sh stop          stop the containers this script started
#
# Environment (defaults in brackets):
#   FLINK_MASTER      Flink REST endpoint [localhost:8081]
#   FLINK_VERSION     1.19 | 1.20 | 2.0 | 2.1 | 2.2, what Beam publishes job servers for [1.20]
#   BEAM_VERSION      [the apache-beam version uv.lock pins]; the job server must match the
#                     apache-beam the job is submitted with
#   JOB_SERVER_IMAGE  [apache/beam_flink<FLINK_VERSION>_job_server:<BEAM_VERSION> for 1.x,
#                      apache/beam_flink_job_server:<BEAM_VERSION>-flink<FLINK_VERSION> for 2.x]
#   JOB_ENDPOINT      [localhost:8099]
#   ENVIRONMENT_TYPE  DOCKER | EXTERNAL | LOOPBACK [EXTERNAL]
#   IMAGE             worker image: the image of templates/dataflow/ (models in /models) [required
#                     for DOCKER and worker-pool]
#   WORKER_POOL       host:port of the worker pool for EXTERNAL [localhost:50000]
#   SPEC INPUT QDRANT_URL COLLECTION DEAD_LETTER   job arguments
#   MODELS_DIR        this machine's model folder, for LOOPBACK workers [models]
#   PARALLELISM       Flink parallelism [2]
#
# Embedded Qdrant (--qdrant-path) is refused on portable runners: the job always writes to the
# Qdrant server at QDRANT_URL, which the workers (not only this machine) must reach.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

FLINK_MASTER="${FLINK_MASTER:-localhost:8081}"
FLINK_VERSION="${FLINK_VERSION:-1.20}"
BEAM_VERSION="${BEAM_VERSION:-$(python3 "$ROOT/tools/lockfile.py" version apache-beam)}"
case "$FLINK_VERSION" in
  1.*) default_job_server="apache/beam_flink${FLINK_VERSION}_job_server:${BEAM_VERSION}" ;;
  *) default_job_server="apache/beam_flink_job_server:${BEAM_VERSION}-flink${FLINK_VERSION}" ;;
esac
JOB_SERVER_IMAGE="${JOB_SERVER_IMAGE:-$default_job_server}"
JOB_ENDPOINT="${JOB_ENDPOINT:-localhost:8099}"
ENVIRONMENT_TYPE="${ENVIRONMENT_TYPE:-EXTERNAL}"
IMAGE="${IMAGE:-}"
WORKER_POOL="${WORKER_POOL:-localhost:50000}"
SPEC="${SPEC:-$ROOT/templates/specs/text-dense-bm25-mrl.yaml}"
INPUT="${INPUT:-$ROOT/examples/articles.jsonl}"
QDRANT_URL="${QDRANT_URL:-http://localhost:6333}"
COLLECTION="${COLLECTION:-articles}"
DEAD_LETTER="${DEAD_LETTER:-/tmp/qdrant-beam/dead-letters/$COLLECTION}"
MODELS_DIR="${MODELS_DIR:-$ROOT/models}"
PARALLELISM="${PARALLELISM:-2}"

step="${1:-portable}"

need_image() {
  if [ -z "$IMAGE" ]; then
    echo "set IMAGE to the worker image (build it from templates/dataflow/Dockerfile)" >&2
    exit 2
  fi
}

# --environment_type/--environment_config for the chosen worker environment.
environment_args() {
  case "$ENVIRONMENT_TYPE" in
    DOCKER)
      # Each Flink task manager starts the worker image itself (needs docker on the TMs).
      need_image
      env_args=(--environment_type DOCKER --environment_config "$IMAGE")
      ;;
    EXTERNAL)
      # Workers come from a long-running worker pool (`run.sh worker-pool`, or a sidecar of
      # every task manager on Kubernetes) that has the models and the API keys.
      env_args=(--environment_type EXTERNAL --environment_config "$WORKER_POOL")
      ;;
    LOOPBACK)
      # Workers run inside this submitting process: local Flink only, models from MODELS_DIR.
      env_args=(--environment_type LOOPBACK)
      ;;
    *)
      echo "ENVIRONMENT_TYPE must be DOCKER, EXTERNAL or LOOPBACK" >&2
      exit 2
      ;;
  esac
}

start_job_server() {
  # Host networking: the job server must reach the Flink master and the workers it hands out
  # artifacts to; 8099 = job service, 8098 = artifacts, 8097 = expansion service.
  docker run --detach --rm --net=host --name qdrant-beam-flink-job-server \
    "$JOB_SERVER_IMAGE" \
    --flink-master="$FLINK_MASTER" \
    --job-port=8099 --artifact-port=8098 --expansion-port=8097
  for _ in $(seq 1 60); do
    if (exec 3<>"/dev/tcp/${JOB_ENDPOINT%:*}/${JOB_ENDPOINT##*:}") 2>/dev/null; then
      echo "job server ready at $JOB_ENDPOINT"
      return 0
    fi
    sleep 1
  done
  echo "job server did not open $JOB_ENDPOINT" >&2
  exit 1
}

start_worker_pool() {
  # The image's ENTRYPOINT is Beam's boot; --worker_pool turns it into a worker pool service.
  # Keys reach the workers as environment variables of the pool.
  need_image
  docker run --detach --rm --net=host --name qdrant-beam-worker-pool \
    --env QDRANT_API_KEY --env OPENAI_API_KEY \
    "$IMAGE" --worker_pool
}

submit_portable() {
  environment_args
  # Portable runners look models up on the workers only. LOOPBACK workers are this process,
  # so they need this machine's folder; DOCKER/EXTERNAL workers use the image's /models.
  local models=()
  if [ "$ENVIRONMENT_TYPE" = LOOPBACK ]; then
    models=(--models-dir "$MODELS_DIR")
    export QDRANT_BEAM_MODELS="${QDRANT_BEAM_MODELS:-$MODELS_DIR}"
  fi
  qdrant-beam ingest \
    --spec "$SPEC" \
    --input "$INPUT" \
    --qdrant-url "$QDRANT_URL" \
    --collection "$COLLECTION" \
    --dead-letter "$DEAD_LETTER" \
    --batch-size 256 \
    --cache-size 10000 \
    ${models[@]+"${models[@]}"} \
    --runner PortableRunner \
    --job_endpoint "$JOB_ENDPOINT" \
    --parallelism "$PARALLELISM" \
    "${env_args[@]}"
}

submit_flinkrunner() {
  # FlinkRunner starts the job server itself: it downloads Beam's Flink job server jar from
  # Maven Central (needs Java 11+ and internet; or pass --flink_job_server_jar PATH) and
  # submits to FLINK_MASTER. --flink_version must match the cluster (Beam's default is 2.2).
  environment_args
  # Portable runners look models up on the workers only. LOOPBACK workers are this process,
  # so they need this machine's folder; DOCKER/EXTERNAL workers use the image's /models.
  local models=()
  if [ "$ENVIRONMENT_TYPE" = LOOPBACK ]; then
    models=(--models-dir "$MODELS_DIR")
    export QDRANT_BEAM_MODELS="${QDRANT_BEAM_MODELS:-$MODELS_DIR}"
  fi
  qdrant-beam ingest \
    --spec "$SPEC" \
    --input "$INPUT" \
    --qdrant-url "$QDRANT_URL" \
    --collection "$COLLECTION" \
    --dead-letter "$DEAD_LETTER" \
    ${models[@]+"${models[@]}"} \
    --runner FlinkRunner \
    --flink_master "$FLINK_MASTER" \
    --flink_version "$FLINK_VERSION" \
    --parallelism "$PARALLELISM" \
    "${env_args[@]}"
}

case "$step" in
  job-server) start_job_server ;;
  worker-pool) start_worker_pool ;;
  portable) submit_portable ;;
  flinkrunner) submit_flinkrunner ;;
  stop)
    docker stop qdrant-beam-flink-job-server qdrant-beam-worker-pool 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 [job-server|worker-pool|portable|flinkrunner|stop]" >&2
    exit 2
    ;;
esac
