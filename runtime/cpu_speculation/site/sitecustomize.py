# Loaded by Python at start-up in every SGLang process the CPU profile launches (the launcher
# puts this folder on the child's PYTHONPATH); see forkpoint.runtime.cpu_speculation.
from forkpoint.runtime.cpu_speculation import install

install()
