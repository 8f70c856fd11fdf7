"""Results out: the record of one document, the resumable JSONL file."""
