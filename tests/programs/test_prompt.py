"""The prompt prefix: instructions, a field guide, few-shot turns; the document after the fork."""

from forkpoint.programs.prompt import field_guide, task_prompt
from forkpoint.programs.tasks.registry import get_task


def test_the_field_guide_tells_the_model_what_each_field_means_and_its_bounds():
    guide = field_guide(get_task("invoices").constraint.schema)
    assert "- vendor (text, at most 80 characters, required): The company that issued" in guide
    assert "- issue_date (date YYYY-MM-DD or null, optional)" in guide
    assert "- line_items (list of LineItem, at most 6, required)" in guide
    assert "LineItem objects have these fields:" in guide
    assert "- amount (number, required): The line's total amount" in guide


def test_enums_are_listed_with_their_allowed_values():
    guide = field_guide(get_task("support_tickets").constraint.schema)
    assert "- severity (one of 'low', 'medium', 'high', 'critical', required)" in guide


def test_the_prefix_holds_instructions_and_examples_and_no_document():
    task = get_task("contacts")
    prompt = task_prompt(task, "chatml")
    assert prompt.prefix.startswith("<|im_start|>system\n" + task.instructions)
    assert prompt.prefix.count("<|im_start|>assistant\n{") == len(task.examples)
    assert "Unique document text" not in prompt.prefix
    full = prompt.full("Unique document text")
    assert full.startswith(prompt.prefix)
    assert full.endswith("Document:\nUnique document text<|im_end|>\n<|im_start|>assistant\n")


def test_few_shot_answers_are_compact_json_of_the_example_objects():
    task = get_task("invoices")
    prompt = task_prompt(task, "mixtral-v1")
    for example in task.examples:
        assert f"[/INST] {example.output.model_dump_json()}</s>" in prompt.prefix


def test_a_re_ask_continues_the_document_turn_with_the_answer_and_the_error():
    for chat_format, closes in (("chatml", "<|im_end|>\n"), ("mixtral-v1", "</s>")):
        prompt = task_prompt(get_task("contacts"), chat_format)
        turn = prompt.document_turn("Ann Lee")
        reask = prompt.reask("Ann Lee", [('{"name":"Ann"}', "name too short")])
        assert reask.startswith(turn)  # after the fork point, the first attempt is a prefix
        rest = reask[len(turn) :]
        assert rest.startswith(('{"name":"Ann"}', ' {"name":"Ann"}'))
        assert closes in rest and "fails validation: name too short" in rest
        assert rest.endswith(prompt.chat_format.turn("x", opens=False).split("x")[-1])
