"""The built-in tasks are complete, bounded and come with labelled samples."""

import json
from pathlib import Path

import pytest

from forkpoint.programs.tasks.registry import builtin_tasks

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TASKS = builtin_tasks()


def _properties(schema):
    """Every (path, property schema) of a model schema, nested definitions included."""
    objects = [("$", schema), *((f"$defs.{k}", v) for k, v in schema.get("$defs", {}).items())]
    for where, node in objects:
        for name, prop in node.get("properties", {}).items():
            yield f"{where}.{name}", prop


def _leaves(prop):
    for option in prop.get("anyOf", [prop]):
        if option.get("type") != "null":
            yield option


@pytest.mark.parametrize("task", TASKS.values(), ids=TASKS.keys())
def test_every_field_has_a_description(task):
    schema = task.output_model.model_json_schema()
    missing = [path for path, prop in _properties(schema) if not prop.get("description")]
    assert not missing


@pytest.mark.parametrize("task", TASKS.values(), ids=TASKS.keys())
def test_every_string_and_list_field_is_bounded(task):
    assert task.constraint.warnings == []
    schema = task.output_model.model_json_schema()
    for path, prop in _properties(schema):
        for leaf in _leaves(prop):
            if leaf.get("type") == "array":
                assert "maxItems" in leaf, path
            if leaf.get("type") == "string":
                assert {"maxLength", "format", "pattern", "enum"} & leaf.keys(), path


@pytest.mark.parametrize("task", TASKS.values(), ids=TASKS.keys())
def test_each_task_has_few_shot_examples_and_a_tight_output_budget(task):
    assert len(task.examples) >= 2
    assert task.max_output_tokens <= 400


@pytest.mark.parametrize("name", TASKS.keys())
def test_each_task_has_twenty_sample_documents_each_with_a_valid_label(name):
    folder = SAMPLES / name
    documents = sorted(p.name for p in folder.iterdir() if p.suffix in (".txt", ".md"))
    assert len(documents) >= 20
    labels = [json.loads(line) for line in (SAMPLES / "labels" / f"{name}.jsonl").open()]
    assert sorted(label["document"] for label in labels) == documents
    for label in labels:
        TASKS[name].output_model.model_validate(label["expected"])


@pytest.mark.parametrize("task", TASKS.values(), ids=TASKS.keys())
def test_few_shot_documents_are_not_sample_documents(task):
    samples = {p.read_text().strip() for p in (SAMPLES / task.name).iterdir()}
    assert not {example.document.strip() for example in task.examples} & samples
