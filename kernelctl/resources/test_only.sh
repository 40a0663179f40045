#!/bin/sh
# kernelctl asks `sbatch --test-only` whether Slurm would run a kernel's job; never run.
true
