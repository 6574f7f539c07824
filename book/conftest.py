"""nbval runs the chapters in kernels started from this process. Their stored smoke outputs were
computed with two torch threads (CI's cores); a different thread count changes the order of
floating-point sums and can move a close number. The kernels inherit these variables, so the
comparison uses two threads on any machine and whatever the caller's environment says."""

import os

SMOKE_THREADS = "2"  # tools/store_smoke_outputs.py stores the outputs with the same count

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = SMOKE_THREADS
