#!/usr/bin/env bash
# Trains on a GPU cluster under SLURM: one process per GPU, joined by jax.distributed.
#
#   sbatch --nodes=2 --ntasks-per-node=8 --gpus-per-node=8 launch/slurm.sh \
#       configs/cifar100.py /shared/runs/cifar100 --config.dataset.data_dir=/shared/tfds
#
# jax.distributed.initialize() (main.py --multihost) reads the coordinator address, the process
# count and each process's id and local GPU from SLURM's environment. Every task writes its own
# log, logs/freqprior-JOBID-TASK.log; TensorBoard and the eval JSON come from task 0. Install first
# on the cluster: pip install 'jax[cuda12]' && pip install -e . (in the environment sbatch uses).
# Resubmitting the same command resumes from the latest checkpoint in the workdir; SLURM's SIGTERM
# before a time limit or preemption triggers a checkpoint and a clean exit.
#SBATCH --job-name=freqprior
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --signal=TERM@120
#SBATCH --output=logs/freqprior-%j.out
set -euo pipefail

if (( $# < 2 )); then
  sed -n '2,14p' "$0"
  exit 2
fi
config=$1 workdir=$2
shift 2
mkdir -p logs
srun --kill-on-bad-exit=1 --output="logs/freqprior-%j-%t.log" \
  python main.py --config="$config" --workdir="$workdir" --multihost "$@"
