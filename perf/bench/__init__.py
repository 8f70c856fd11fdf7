"""What `forkpoint bench` and `forkpoint calibrate` run: the workload (generated corpus or the
user's folder), the direct and gateway runs and their figures, the server variants and probes,
the machine a run was on and where its results are written. Loads neither peers nor studies
when imported; bench.py loads the llama.cpp peer only when a peer run is asked for."""
