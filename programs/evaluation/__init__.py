"""Evaluation on labelled documents: the run, the scores, the report."""
