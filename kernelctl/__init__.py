"""kernelctl: Jupyter kernels on HPC base images, done right in one command."""

__version__ = "0.1.0"
