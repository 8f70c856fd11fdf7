"""An evaluation as data (JSON), as Markdown, and the paired comparison of two task variants."""

from __future__ import annotations

from typing import Any

from forkpoint.programs.evaluation.calibration import calibration
from forkpoint.programs.evaluation.evaluate import Evaluation
from forkpoint.programs.evaluation.scoring import paired_difference


def report(evaluation: Evaluation, other: Evaluation | None = None) -> dict[str, Any]:
    """Per-field metrics, rates and run figures; with `other`, the per-field comparison."""
    data: dict[str, Any] = {"variants": [_variant(evaluation)]}
    if other is not None:
        data["variants"].append(_variant(other))
        data["comparison"] = _compare(evaluation, other)
    return data


def _variant(evaluation: Evaluation) -> dict[str, Any]:
    fields = {}
    for name, score in evaluation.scores.items():
        row = {
            "exact": round(score.exact_accuracy, 4),
            "normalized": round(score.normalized_accuracy, 4),
        }
        if score.is_list:
            row |= {
                "precision": round(score.precision, 4),
                "recall": round(score.recall, 4),
                "f1": round(score.f1, 4),
            }
        fields[name] = row
    return {
        "task": evaluation.task.name,
        "documents": evaluation.summary.total,
        "valid_rate": round(evaluation.valid_rate, 4),
        "truncated_rate": round(evaluation.truncated_rate, 4),
        "grounded_rate": None
        if evaluation.grounded_rate is None
        else round(evaluation.grounded_rate, 4),
        "fields": fields,
        "copy_fields": list(evaluation.task.copy_fields),
        "strings": {
            path: {"values": values, "in_document": round(verbatim / values, 4)}
            for path, (values, verbatim) in evaluation.strings_in_document().items()
        },
        "confidence": calibration(evaluation.confidence_points()),
        "run": evaluation.summary.to_json(),
    }


def _compare(a: Evaluation, b: Evaluation) -> dict[str, Any]:
    rows = {}
    for name in a.scores.keys() & b.scores.keys():
        only_a, only_b, p = paired_difference(a.scores[name].outcomes, b.scores[name].outcomes)
        delta = b.scores[name].normalized_accuracy - a.scores[name].normalized_accuracy
        if only_a + only_b == 0:
            note = "same outcome on every document"
        elif p < 0.05:
            note = f"significant (exact McNemar p={p:.3f})"
        else:
            note = f"not significant (p={p:.2f}, {only_a + only_b} documents differ)"
        rows[name] = {
            "delta_normalized": round(delta, 4),
            "a_only": only_a,
            "b_only": only_b,
            "p_value": round(p, 4),
            "note": note,
        }
    return {"a": a.task.name, "b": b.task.name, "fields": dict(sorted(rows.items()))}


def markdown(data: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = []
    for variant in data["variants"]:
        run = variant["run"]
        lines += [
            f"## {variant['task']}",
            "",
            f"{variant['documents']} documents · valid {variant['valid_rate']:.0%} · "
            f"truncated {variant['truncated_rate']:.0%} · grounded "
            f"{_percent(variant['grounded_rate'])} · read {run['read_tokens_per_second']} "
            f"tok/s · write {run['write_tokens_per_second']} tok/s · {run['wall_seconds']} s"
            + (f" · copy grammars {run['grammar_seconds']} s" if "grammar_seconds" in run else ""),
            "",
            "| field | exact | normalized | precision | recall | F1 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in variant["fields"].items():
            extra = (
                [f"{row[k]:.2f}" for k in ("precision", "recall", "f1")]
                if "f1" in row
                else ["", "", ""]
            )
            lines.append(
                f"| {name} | {row['exact']:.2f} | {row['normalized']:.2f} | "
                + " | ".join(extra)
                + " |"
            )
        lines += ["", *_strings_table(variant), ""]
        lines += [*confidence_table(variant["confidence"]), ""]
    if "comparison" in data:
        comparison = data["comparison"]
        lines += [
            f"## {comparison['b']} vs {comparison['a']}",
            "",
            "| field | Δ normalized | only a right | only b right | note |",
            "|---|---:|---:|---:|---|",
        ]
        for name, row in comparison["fields"].items():
            lines.append(
                f"| {name} | {row['delta_normalized']:+.2f} | {row['a_only']} | "
                f"{row['b_only']} | {row['note']} |"
            )
    return "\n".join(lines) + "\n"


def _strings_table(variant: dict[str, Any]) -> list[str]:
    """String values found verbatim in their document, per field; copy fields marked."""
    if not variant.get("strings"):
        return []
    copied = set(variant.get("copy_fields") or ())
    lines = ["| string field | values | verbatim in document |", "|---|---:|---:|"]
    for path, row in variant["strings"].items():
        name = f"{path} (copy)" if path in copied else path
        lines.append(f"| {name} | {row['values']} | {row['in_document']:.0%} |")
    return lines


def confidence_table(section: dict[str, Any]) -> list[str]:
    """Accuracy by confidence bin and the AUROC, over (document, field) values."""
    if not section["values"]:
        return ["No confidences (the runtime returned no logprobs)."]
    auroc = "n/a (all right or all wrong)" if section["auroc"] is None else section["auroc"]
    lines = [
        f"Confidence over {section['values']} field values ({section['right']} right): "
        f"AUROC right vs wrong {auroc}",
        "",
        "| confidence | values | right | accuracy |",
        "|---|---:|---:|---:|",
    ]
    for row in section["bins"]:
        lines.append(
            f"| {row['bin']} | {row['values']} | {row['right']} | {_percent(row['accuracy'])} |"
        )
    return lines


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"
