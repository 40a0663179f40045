#!/bin/sh
# Written by kernelctl; needs nothing of kernelctl. Starts this kernel's Python or, when
# that cannot run in this session, a stand-in kernel that says why in the notebook
# (instead of Jupyter's silent "kernel died, restarting" loop).
python='/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/venv/bin/python'
digest=''
# The environments this one is layered on; the kernel is not itself without them.
base_here=yes
# The conda environment's activation scripts (etc/conda/activate.d), as conda runs them.
for script in '/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/conda'/etc/conda/activate.d/*.sh; do
  # shellcheck source=/dev/null
  [ -f "$script" ] && . "$script"
done
[ -d '/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/conda'/conda-meta ] || base_here=no
case ",$UENV_MOUNT_LIST," in
  *"/$digest/"*|",,") image_here=yes ;;
  *) image_here=no ;;
esac
if [ -x "$python" ] && [ "$base_here" = yes ] && { [ -z "$digest" ] || [ "$image_here" = yes ]; }; then
  # `--kernelctl-run CMD...` (kernelctl run/submit/engines): CMD in this very environment.
  case "${1-}" in --kernelctl-run) shift; exec "$@" ;; esac
  exec "$python" -Xfrozen_modules=off -m ipykernel_launcher "$@"
fi
if [ ! -d '/tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï/venv' ]; then why='gone: /tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï'; else why='unavailable: /tmp/it'"'"'s a "dir" $HOME `id` 50%x ünï; $(id)'; fi
case "${1-}" in --kernelctl-run|--kernelctl-slurm-kernel) echo "kernelctl-launch.sh: $why" >&2; exit 1 ;; esac
# The Jupyter server's Python (our parent) has ipykernel, or else one on PATH may.
server_python=$(tr '\0' '\n' < /proc/$PPID/cmdline 2>/dev/null | head -n 1)
for candidate in "$server_python" python3 python; do
  if [ -n "$candidate" ] && "$candidate" -c 'import ipykernel' >/dev/null 2>&1; then
    exec "$candidate" "$(dirname "$0")/kernelctl-explain.py" "$why" "$@"
  fi
done
echo "$why" >&2
exit 1
