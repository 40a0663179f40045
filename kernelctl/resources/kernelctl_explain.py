"""Written by kernelctl into a kernelspec; needs nothing of kernelctl, only ipykernel.

Started by kernelctl-launch.sh, with the Jupyter server's own Python, when the kernel's
Python cannot run in this session (its environment was deleted, or its base image is not
mounted). Instead of a silent "kernel died, restarting" loop, every cell answers with
what is wrong and what to do.

Usage: python kernelctl_explain.py WHY -f CONNECTION_FILE
"""
import sys

from ipykernel.kernelapp import IPKernelApp

why = sys.argv[1]
RAISE_WHY = f"raise KernelUnavailable({why!r}) from None\n"
ANSWER_EVERY_CELL = (
    "get_ipython().run_line_magic('xmode', 'Minimal')\n"  # the message, not a traceback
    "class KernelUnavailable(Exception):\n"
    "    'This kernel cannot run in this session; the message says why.'\n"
    f"get_ipython().input_transformers_cleanup.append(lambda lines: [{RAISE_WHY!r}])\n"
)
IPKernelApp.launch_instance(argv=sys.argv[2:], exec_lines=[ANSWER_EVERY_CELL])
