#!/usr/bin/env bash
# Build the service image and probe it as a user would: `make image-smoke`, or deploy/image-smoke.sh.
# Uses docker when present, else podman (building with buildah when present, in Docker format so that the
# HEALTHCHECK is kept). Exits non-zero at the first failed check, saying which.
#
#   IMAGE=name:tag          the image to build and run (default adversarial-purifier:smoke)
#   SMOKE_PORT=8000         the port the container listens on, and is probed on
#   IMAGE_BUILD_ARGS=...    extra build arguments (e.g. --build-arg PIP_INDEX_URL=... or --secret id=pip-ca,src=ca.pem)
#   IMAGE_RUN_ARGS=...      extra run arguments (default: -p SMOKE_PORT:SMOKE_PORT)
#   SKIP_BUILD=1            probe an image built before
# Writes docs/image.json: the image's size and where its bytes go (deploy/image_sizes.py, run in the container).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-adversarial-purifier:smoke}
PORT=${SMOKE_PORT:-8000}
RUN_ARGS=${IMAGE_RUN_ARGS:--p $PORT:$PORT}
GRACE_S=40  # docker-compose.yml's stop_grace_period
NAME=purifier-smoke-$$
URL=http://127.0.0.1:$PORT

fail() { echo "image-smoke: FAILED: $*" >&2; exit 1; }
step() { echo "image-smoke: $*"; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  ENGINE=docker; BUILD=(docker build)
elif command -v podman >/dev/null; then
  ENGINE=podman
  if command -v buildah >/dev/null; then BUILD=(buildah bud --format docker); else BUILD=(podman build --format docker); fi
else
  fail "no container engine: install docker, or podman (and buildah)"
fi

cleanup() { "$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT

if [ -z "${SKIP_BUILD:-}" ]; then
  step "building $IMAGE with ${BUILD[*]}"
  started=$(date +%s)
  # shellcheck disable=SC2086  # the extra arguments are words
  "${BUILD[@]}" ${IMAGE_BUILD_ARGS:-} -t "$IMAGE" -f Dockerfile . || fail "the build"
  step "built in $(( $(date +%s) - started )) s"
fi
size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")
step "image size: $(awk -v b="$size" 'BEGIN {printf "%.2f GB", b / 1e9}')"

step "running it read-only, as Kubernetes does"
# shellcheck disable=SC2086
"$ENGINE" run -d --name "$NAME" --read-only --tmpfs /tmp -e PURIFIER_PORT="$PORT" $RUN_ARGS "$IMAGE" >/dev/null \
  || fail "the container did not start"

step "waiting for /readyz"
for _ in $(seq 1 180); do
  if curl -fsS "$URL/readyz" >/dev/null 2>&1; then ready=1; break; fi
  [ "$("$ENGINE" inspect --format '{{.State.Running}}' "$NAME")" = true ] || break
  sleep 1
done
[ -n "${ready:-}" ] || { "$ENGINE" logs "$NAME" 2>&1 | tail -20; fail "/readyz never answered 200"; }

step "POST a bundled sample to /defended-classify"
label=$(python3 -c 'import json; print(json.load(open("artifacts/mnist/manifest.json"))["samples"][0]["label"])')
answer=$(curl -fsS --data-binary @artifacts/mnist/samples/000.png -H 'content-type: image/png' \
  "$URL/defended-classify?dataset=mnist") || fail "/defended-classify did not answer 200"
got=$(printf '%s' "$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin)["label"])')
[ "$got" = "$label" ] || fail "/defended-classify said $got for sample 000, whose label is $label"
step "label $got, as the manifest says"

step "measuring where the image's bytes go"
parts=$("$ENGINE" exec -i "$NAME" python - < deploy/image_sizes.py) || fail "deploy/image_sizes.py"
base=$("$ENGINE" image inspect --format '{{.Size}}' "$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)" 2>/dev/null || echo null)
printf '%s' "$parts" | python3 -c '
import datetime, json, sys
parts = json.load(sys.stdin)
image = {"image_bytes": int(sys.argv[1]), "base_image_bytes": None if sys.argv[2] == "null" else int(sys.argv[2]),
         "engine": sys.argv[3], "measured": datetime.date.today().isoformat(), **parts}
open("docs/image.json", "w").write(json.dumps(image, indent=1) + "\n")' "$size" "$base" "$ENGINE"
step "wrote docs/image.json"

step "checking the user"
ids=$("$ENGINE" exec "$NAME" sh -c 'grep -E "^(Uid|Gid):" /proc/1/status | awk "{print \$2}" | tr "\n" " "')
[ "$ids" = "10001 10001 " ] || fail "the service runs as uid/gid $ids, not 10001 10001"
"$ENGINE" exec "$NAME" getent group 10001 >/dev/null || fail "gid 10001 has no entry in /etc/group"
step "uid 10001, gid 10001 ($("$ENGINE" exec "$NAME" id -gn))"

step "running the image's own HEALTHCHECK command"
health=$("$ENGINE" inspect --format '{{json .Config.Healthcheck}}' "$NAME")
mapfile -t test_cmd < <(printf '%s' "$health" | python3 -c '
import json, sys
test = (json.load(sys.stdin) or {}).get("Test") or []
if test[:1] == ["CMD"]:
    print("\n".join(test[1:]))')
[ "${#test_cmd[@]}" -gt 0 ] || fail "the image has no HEALTHCHECK (an OCI-format build drops it: build with --format docker)"
"$ENGINE" exec "$NAME" "${test_cmd[@]}" || fail "the HEALTHCHECK command failed"
step "HEALTHCHECK passes"

step "stopping it (SIGTERM, grace ${GRACE_S} s)"
started=$(date +%s)
"$ENGINE" stop -t "$GRACE_S" "$NAME" >/dev/null || fail "stop"
took=$(( $(date +%s) - started ))
code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
[ "$took" -lt "$GRACE_S" ] || fail "took ${took} s to stop, not under the ${GRACE_S} s grace period"
step "exited 0 in ${took} s"
echo "image-smoke: all checks passed"
