"""Peers: other engines serving the same job with the same prompts, schema and limits, so the
bench and calibrate can compare against what a user would otherwise pick — llama.cpp's two
servers on a CPU (llamacpp), vLLM's OpenAI server on a GPU (vllm_server), and the study of
llama-server's slot count (slots). Loaded only when a peer run is asked for."""
