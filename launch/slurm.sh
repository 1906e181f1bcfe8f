#!/usr/bin/env bash
# Trains on a GPU cluster under SLURM: one process per GPU, joined by jax.distributed.
#
#   cd CHECKOUT && sbatch --nodes=2 --ntasks-per-node=8 --gpus-per-node=8 launch/slurm.sh \
#       configs/cifar100.py /shared/runs/cifar100 --config.dataset.data_dir=/shared/tfds
#
# The job runs in its working directory, which must be this checkout on a shared filesystem:
# by default the directory sbatch was run in (SLURM_SUBMIT_DIR), else sbatch --chdir. SLURM runs a
# copy of this script from its spool directory, so the script's own path says nothing. A relative
# CONFIG, WORKDIR and the logs resolve there. jax.distributed.initialize() (main.py --multihost)
# reads the coordinator address, the process count and each process's id and local GPU from
# SLURM's environment. Every task writes its own log, logs/freqprior-JOBID-TASK.log; the batch
# script's own output goes to freqprior-JOBID.out (SLURM does not create a directory for it).
# TensorBoard and the eval JSON come from task 0. Install first on the cluster:
# pip install 'jax[cuda12]' && pip install -e . (in the environment sbatch uses). Resubmitting the
# same command resumes from the latest checkpoint in the workdir; SLURM's SIGTERM before a time
# limit or preemption triggers a checkpoint and a clean exit.
#SBATCH --job-name=freqprior
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --signal=TERM@120
#SBATCH --output=freqprior-%j.out
set -euo pipefail

if (( $# < 2 )); then
  awk 'NR > 1 { if (!/^#( |$)/) exit; print }' "$0"
  exit 2
fi
if [[ ! -f main.py ]]; then
  echo "slurm.sh: no main.py in $PWD; run sbatch in the freqprior checkout or pass --chdir" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
mkdir -p logs
srun --kill-on-bad-exit=1 --output="logs/freqprior-%j-%t.log" \
  python main.py --config="$config" --workdir="$workdir" --multihost "$@"
