#!/bin/sh
# Written by `kernelctl submit` on DATE.
# Runs /tmp/it's a "dir" $HOME `id` 50%x ünï/train.py --epochs=3 ; id
# in the environment of the Jupyter kernel 'job' (Job $(id)),
# built on python:/tmp/it's a "dir" $HOME `id` 50%x ünï. Needs nothing of kernelctl: the kernel's own launcher (last line)
# checks that the base is here, then runs the command.
#SBATCH --job-name=job-train
#SBATCH "--uenv=prgenv-gnu/24.11:v1:/tmp/it's a \"dir\" $HOME `id` 50%x ünï"
#SBATCH "--output=/tmp/it's a \"dir\" $HOME `id` 50%%x ünï/train-%j.log"
#SBATCH --time=00:05:00 -o "/tmp/it's a \"dir\" $HOME `id` 50%x ünï/out-%j.log" "--comment=a b#c"
# kernel.json's environment, as Jupyter gives it to the kernel:
export PATH='/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/bin:/usr/bin'
export PRICE='$5'
export LD_LIBRARY_PATH=/opt/lib
export KERNELCTL_KERNEL=job
exec /bin/sh '/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/kernelctl-launch.sh' --kernelctl-run '/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/venv/bin/python' '/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/train.py' --epochs=3 '; id'
