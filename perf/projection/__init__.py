"""The GPU projection: a measured job's token counts projected onto one 2×RTX 4090 server
running Mixtral-8x7B AWQ, from facts (gpu_model), ranges (gpu_assumptions), a step model
(gpu_step), the job (gpu_projection) and its tables (gpu_report); project.py is the script.
Pure arithmetic: imports nothing else of perf/ and starts no server."""
