#!/usr/bin/env bash
# Build the qdrant-beam image (Flex Template launcher + Beam worker), register the Flex Template,
# and launch an ingest job. Everything is driven by environment variables:
#
#   PROJECT        GCP project (required)
#   REGION         Dataflow + Artifact Registry region (required), e.g. europe-west1
#   BUCKET         GCS bucket, no gs:// (required): template spec, staging, temp, dead letters
#   REPOSITORY     Artifact Registry Docker repository (default qdrant-beam; created if missing)
#   TAG            image tag (default: git short commit, else a timestamp)
#   IMAGE          full image name (default $REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/qdrant-beam:$TAG)
#   TEMPLATE       template spec path (default gs://$BUCKET/templates/qdrant-beam-ingest-$TAG.json)
#   BUILDER        cloudbuild (default) or docker (local docker build + push)
#   BEAM_VERSION   Beam SDK of the image (default: the version uv.lock pins; the build fails on
#                  any other)
#   SPEC INPUT QDRANT_URL COLLECTION   parameters of the example run
#   MAX_WORKERS WORKER_MACHINE_TYPE SERVICE_ACCOUNT SUBNETWORK   optional run settings
#
# Usage: templates/dataflow/build_and_run.sh [all|image|template|run|smoke]   (default: all)
#   smoke: run `qdrant-beam ingest` inside the built image on examples/articles.jsonl with
#          FnApiRunner, against $QDRANT_URL (docker only; checks the image before Dataflow).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

: "${PROJECT:?set PROJECT to your GCP project}"
: "${REGION:?set REGION, e.g. europe-west1}"
: "${BUCKET:?set BUCKET (a GCS bucket name, without gs://)}"
REPOSITORY="${REPOSITORY:-qdrant-beam}"
TAG="${TAG:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || date +%Y%m%d-%H%M%S)}"
IMAGE="${IMAGE:-$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/qdrant-beam:$TAG}"
TEMPLATE="${TEMPLATE:-gs://$BUCKET/templates/qdrant-beam-ingest-$TAG.json}"
BUILDER="${BUILDER:-cloudbuild}"
BEAM_VERSION="${BEAM_VERSION:-$(python3 "$ROOT/tools/lockfile.py" version apache-beam)}"

SPEC="${SPEC:-/template/specs/text-dense-bm25-mrl.yaml}"
INPUT="${INPUT:-gs://$BUCKET/articles/*.jsonl}"
QDRANT_URL="${QDRANT_URL:-http://qdrant.internal:6333}"
COLLECTION="${COLLECTION:-articles}"

step="${1:-all}"

build_image() {
  if ! gcloud artifacts repositories describe "$REPOSITORY" \
      --project "$PROJECT" --location "$REGION" >/dev/null 2>&1; then
    gcloud artifacts repositories create "$REPOSITORY" \
      --project "$PROJECT" --location "$REGION" --repository-format docker
  fi
  case "$BUILDER" in
    cloudbuild)
      # The build context is the repository root; the ignore file keeps .venv/, models/ etc. out.
      gcloud builds submit "$ROOT" \
        --project "$PROJECT" \
        --config "$HERE/cloudbuild.yaml" \
        --ignore-file "$HERE/.gcloudignore" \
        --substitutions "_IMAGE=$IMAGE,_BEAM_VERSION=$BEAM_VERSION"
      ;;
    docker)
      gcloud auth configure-docker "$REGION-docker.pkg.dev" --quiet
      docker build "$ROOT" \
        --file "$HERE/Dockerfile" \
        --build-arg "BEAM_VERSION=$BEAM_VERSION" \
        --build-arg "WORKER_IMAGE=$IMAGE" \
        --tag "$IMAGE"
      docker push "$IMAGE"
      ;;
    *)
      echo "BUILDER must be cloudbuild or docker, not '$BUILDER'" >&2
      exit 2
      ;;
  esac
}

build_template() {
  gcloud dataflow flex-template build "$TEMPLATE" \
    --project "$PROJECT" \
    --image "$IMAGE" \
    --sdk-language PYTHON \
    --metadata-file "$HERE/metadata.json"
}

run_template() {
  # API keys never travel as parameters: workers read $QDRANT_API_KEY (see README.md).
  gcloud dataflow flex-template run "qdrant-beam-ingest-$(date +%Y%m%d-%H%M%S)" \
    --project "$PROJECT" \
    --region "$REGION" \
    --template-file-gcs-location "$TEMPLATE" \
    --staging-location "gs://$BUCKET/staging" \
    --temp-location "gs://$BUCKET/temp" \
    ${MAX_WORKERS:+--max-workers "$MAX_WORKERS"} \
    ${WORKER_MACHINE_TYPE:+--worker-machine-type "$WORKER_MACHINE_TYPE"} \
    ${SERVICE_ACCOUNT:+--service-account-email "$SERVICE_ACCOUNT"} \
    ${SUBNETWORK:+--subnetwork "$SUBNETWORK" --disable-public-ips} \
    --parameters "spec=$SPEC" \
    --parameters "input=$INPUT" \
    --parameters "qdrant_url=$QDRANT_URL" \
    --parameters "collection=$COLLECTION" \
    --parameters "dead_letter=gs://$BUCKET/dead-letters/$COLLECTION/" \
    --parameters "batch_size=256" \
    --parameters "upsert_batch_size=128" \
    --parameters "cache_size=10000" \
    --parameters "dedup=batch" \
    --parameters "sdk_container_image=$IMAGE"
}

smoke() {
  # The image's own CLI on the repo's sample articles, in one local process.
  docker run --rm --net=host \
    --env QDRANT_API_KEY \
    --volume "$ROOT/examples:/data:ro" \
    --entrypoint qdrant-beam \
    "$IMAGE" \
    ingest \
    --spec /template/specs/text-dense-bm25-mrl.yaml \
    --input /data/articles.jsonl \
    --qdrant-url "$QDRANT_URL" \
    --collection "${COLLECTION}_smoke" \
    --runner FnApiRunner
}

case "$step" in
  image) build_image ;;
  template) build_template ;;
  run) run_template ;;
  smoke) smoke ;;
  all)
    build_image
    build_template
    run_template
    ;;
  *)
    echo "usage: $0 [all|image|template|run|smoke]" >&2
    exit 2
    ;;
esac
echo "image:    $IMAGE"
echo "template: $TEMPLATE"
