"""An emulated SGLang runtime for measuring forkpoint's own host cost at GPU speed.

`server.py` is a real HTTP server on loopback that answers the endpoints forkpoint calls on a
runtime in SGLang 0.5.23's shapes; `/generate` compiles the request's grammar with xgrammar (in
a thread pool, as SGLang's grammar queue does) and answers with a recorded answer
(`recording.py`) after the latency the GPU projection gives (`service.py`), at the projected
server rate times a multiplier. perf/studies/host_side.py runs the full-size job through the
gateway against it. Nothing here is a measurement of a GPU.
"""
