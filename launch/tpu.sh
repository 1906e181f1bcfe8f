#!/usr/bin/env bash
# Trains on a Cloud TPU VM: a single host (v5litepod-8, v4-8) or a pod slice (v4-32, v5litepod-64).
#
#   launch/tpu.sh NAME ZONE ACCELERATOR CONFIG WORKDIR [main.py flags ...]
#   launch/tpu.sh fp-v4 us-central2-b v4-32 configs/cifar100.py gs://BUCKET/cifar100 \
#       --config.dataset.data_dir=gs://BUCKET/tfds
#
# Creates the TPU VM if it does not exist (TPU_VERSION overrides the runtime image), copies this
# checkout (git archive of HEAD: commit first) to every worker, installs it with python3 -m pip and
# runs main.py --multihost and the given flags on all workers at once (jax.distributed over the
# slice); each worker writes its own ~/freqprior.log. Rerunning the same command resumes from the
# latest checkpoint in WORKDIR. Follow a worker's log with
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=N --command='tail -f freqprior.log'
# Delete the VM when done:
#   gcloud compute tpus tpu-vm delete NAME --zone=ZONE
set -euo pipefail

if (( $# < 5 )); then
  awk 'NR > 1 { if (!/^#( |$)/) exit; print }' "$0"
  exit 2
fi
name=$1 zone=$2 accelerator=$3 config=$4 workdir=$5
shift 5
version=${TPU_VERSION:-tpu-ubuntu2204-base}
tpu=(gcloud compute tpus tpu-vm)

if ! "${tpu[@]}" describe "$name" --zone="$zone" > /dev/null 2>&1; then
  "${tpu[@]}" create "$name" --zone="$zone" --accelerator-type="$accelerator" --version="$version"
fi

archive=$(mktemp --suffix=.tar.gz)
trap 'rm -f "$archive"' EXIT
git -C "$(dirname "$0")/.." archive --format=tar.gz -o "$archive" HEAD
"${tpu[@]}" scp "$archive" "$name":freqprior.tar.gz --zone="$zone" --worker=all

printf -v flags ' %q' "$@"
# Runs on every worker: unpack, install, train; the output goes to that worker's own log.
"${tpu[@]}" ssh "$name" --zone="$zone" --worker=all --command="
  set -e
  rm -rf ~/freqprior && mkdir ~/freqprior && tar -xzf ~/freqprior.tar.gz -C ~/freqprior
  cd ~/freqprior
  python3 -m pip install -q -U 'jax[tpu]' && python3 -m pip install -q -e .
  python3 main.py --config=$(printf %q "$config") --workdir=$(printf %q "$workdir") \\
    --multihost $flags > ~/freqprior.log 2>&1 || { tail -n 30 ~/freqprior.log; exit 1; }
  tail -n 1 ~/freqprior.log
"
