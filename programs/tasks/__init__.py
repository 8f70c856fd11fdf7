"""Tasks: what an extraction asks (`ExtractionTask`), finding one by name, and the built-ins."""
