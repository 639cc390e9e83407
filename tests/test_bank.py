"""The question bank: parsing, %ask, %quiz, the cards' buttons, feedback, search."""

import csv

import pytest
from ipywidgets.widgets.widget import _instances

import ipyllmapps
from ipyllmapps.bank import load_bank
from ipyllmapps.bank.parser import parse_bank
from ipyllmapps.errors import UserError
from ipyllmapps.widgets import bank as views
from tests.conftest import run, usage_error

TEACHER_BANK = """\
# My class

Some words before the first item.

#### 1. What is a tensor?

**Topic:** Basics
**Question:** Say what a tensor is.
**Answer:**

- **Array:** a tensor is an n-dimensional array.
- **Shape:** it has a shape and a dtype.

**Explanation:** Everything in torch is a tensor.

#### 2. Why normalise inputs?

**Question:** Why do we normalise inputs?
**Answer:** It makes optimisation easier.
"""


@pytest.fixture
def shown(monkeypatch):
    """Record every mime bundle the magics display; widgets are findable by id."""
    bundles = []
    monkeypatch.setattr(
        "ipyllmapps.widgets._base.display",
        lambda bundle, raw=False: bundles.append(bundle),
    )
    return bundles


def widget_of(bundle):
    return _instances[bundle["application/vnd.jupyter.widget-view+json"]["model_id"]]


# -- the bank -----------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_bundled_bank_has_the_seeds_25_items(lang):
    bank = load_bank(lang)
    assert [i.id for i in bank.questions] == [f"q{n}" for n in range(1, 21)]
    assert [i.id for i in bank.problems] == [f"p{n}" for n in range(1, 6)]
    assert all(len(q.key_points) >= 4 and q.explanation for q in bank.questions)
    assert all(p.magics and "```" not in p.question for p in bank.problems)
    assert bank.get("q6").topic == "Training"
    assert bank.items[0].summary() == {
        "id": "q1",
        "title": bank.items[0].title,
        "topic": "Basics",
        "kind": "question",
    }


def test_problems_carry_magics_not_the_seeds_code():
    p1 = load_bank("zh").get("p1")
    assert p1.magics[0].startswith("%finetune classify --data")
    assert "%classify -m headlines" in p1.magics[0]
    assert "import torch" not in p1.answer
    assert "--no-repeat-ngram 2" in load_bank("en").get("p5").magics[0]


def test_teacher_bank_parses(tmp_path):
    items = parse_bank(TEACHER_BANK)
    assert [i.id for i in items] == ["q1", "q2"]
    assert items[0].key_points == [
        "Array: a tensor is an n-dimensional array.",
        "Shape: it has a shape and a dtype.",
    ]
    assert (
        items[1].topic == "General"
        and items[1].answer == "It makes optimisation easier."
    )


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "#### 1. A\n**Question:** q\n**Answer:** a\n#### x. B\n",
            "line 4: `#### x. B` is not a numbered item",
        ),
        ("#### 1. A\n**Question:** q\n", "line 1: item 1 (`A`) has no answer"),
        ("#### 1. A\nstray text\n", "line 2: `stray text` comes before the question"),
        (
            "#### 1. A\n**Answer:** a\n",
            "line 2: the answer of item 1 comes before its question",
        ),
        (
            "#### 1. A\n**Question:** q\n**Answer:** a\n#### 1. B\n**Question:** q\n",
            "line 4: item number 1 is used twice",
        ),
        (
            "#### 1. A\n**题目：** q\n**答案：**\n```\ncode\n",
            "a ``` code block is never closed",
        ),
        ("just text\n", "no items found"),
    ],
)
def test_malformed_bank_names_the_line(text, fragment):
    with pytest.raises(UserError) as info:
        parse_bank(text, source="mine.md")
    assert str(info.value).startswith("mine.md")
    assert fragment in str(info.value)


# -- %ask -----------------------------------------------------------------------


def test_ask_q5_shows_question_5_in_both_languages(shell, shown):
    run(shell, "%ask q5 --lang zh")
    run(shell, "%ask q5 --lang en")
    zh, en = (widget_of(b) for b in shown)
    assert isinstance(zh, views.QuestionCard)
    assert zh.item.title == "如何评估AI大模型的效果？"
    assert en.item.title == "How do you evaluate a large AI model?"
    assert "评估AI大模型效果的常见指标" in shown[0]["text/plain"]
    assert "<details>" in shown[1]["text/html"]  # answer folded in the fallback
    assert "F1" in en.answer_view.value and en.answer_view.layout.display == "none"


def test_ask_language_follows_the_config(shell, shown):
    run(shell, "%config LLMApps.language = 'zh'")
    run(shell, "%ask q5")
    assert widget_of(shown[0]).item.title == "如何评估AI大模型的效果？"


def test_ask_loads_a_teacher_bank(shell, shown, tmp_path):
    path = tmp_path / "class.md"
    path.write_text(TEACHER_BANK, encoding="utf-8")
    run(shell, f"%ask --bank {path} q1 -o item")
    assert widget_of(shown[0]).item.title == "What is a tensor?"
    assert shell.user_ns["item"].loc[0, "key_points"][1].startswith("Shape")


def test_ask_lists_the_bank_by_topic(shell, shown):
    run(shell, "%ask -o listing")
    text = shown[0]["text/plain"]
    assert text.index("Training:") < text.index("q6 ") < text.index("Evaluation:")
    assert list(shell.user_ns["listing"]["id"])[:2] == ["q1", "q2"]


def test_ask_problem_inserts_its_magic(shell, shown):
    run(shell, "%ask p1 --insert")
    assert shell.rl_next_input.startswith("%finetune classify --data")
    card = widget_of(shown[0])
    assert "%finetune classify" in shown[0]["text/plain"]
    card.insert_buttons[0].click()
    assert "`%ask p1 --insert`" in views.output_text(card.output)
    assert not card.insert_buttons[0].disabled


@pytest.mark.parametrize(
    "cell, expected",
    [
        (
            "%ask q$n",
            "UsageError: `q$n` is not a question: variables are not expanded "
            "here; type `%ask q5`.",
        ),
        (
            "%ask {n}",
            "UsageError: `{n}` is not a question: variables are not expanded "
            "here; type `%ask q5`.",
        ),
        ("%ask q$missing", "variables are not expanded here; type `%ask q1`."),
    ],
)
def test_p2_variables_are_never_expanded(shell, capsys, cell, expected):
    run(shell, "n = 5")
    assert usage_error(shell, cell, capsys).endswith(expected)


@pytest.mark.parametrize(
    "cell, expected",
    [
        (
            "%ask q0",
            "`q0` is not in this bank: questions are `q1`-`q20`, problems are "
            "`p1`-`p5`.",
        ),
        ("%ask q9999", "`q9999` is not in this bank: questions are `q1`-`q20`"),
        ("%ask p6", "problems are `p1`-`p5`"),
        (
            "%ask qfoo",
            "`qfoo` is not a question id: use one like `q5` or `p1`, or quote "
            'text to search the bank: `%ask "qfoo"`.',
        ),
        ("%ask q5 '", "No closing quotation in `q5 '`: close the quote or remove it."),
        ("%ask q5 --lang fr", "`fr` is not a bank language: use `en` or `zh`."),
        ("%ask --bank nowhere.md", "`nowhere.md` is not a file"),
        ("%ask q5 --insert", "`--insert` works with problems"),
        ("%ask --nope", "unrecognized arguments: --nope"),
    ],
)
def test_p3_wrong_ids_get_one_line_listing_what_is_valid(shell, capsys, cell, expected):
    assert expected in usage_error(shell, cell, capsys)


@pytest.mark.parametrize(
    "cell, expected",
    [
        (
            "%ask q1 q2",
            "`%ask` shows one item at a time: type `%ask q1`, then `%ask q2`; to "
            'search, quote the text: `%ask "q1 q2"`.',
        ),
        (
            "%ask p2 overfitting",
            "`%ask` shows one item at a time: type `%ask p2`; to search, quote "
            'the text: `%ask "p2 overfitting"`.',
        ),
    ],
)
def test_several_ids_are_one_line_not_a_search(shell, shown, capsys, cell, expected):
    assert usage_error(shell, cell, capsys) == "UsageError: " + expected
    assert shown == []


def test_malformed_teacher_bank_is_one_line(shell, capsys, tmp_path):
    path = tmp_path / "bad.md"
    path.write_text(
        "#### 1. A\n**Question:** q\n**Answer:** a\n#### two. B\n", encoding="utf-8"
    )
    line = usage_error(shell, f"%ask --bank {path} q1", capsys)
    assert "bad.md, line 4: `#### two. B` is not a numbered item" in line


# -- D2: buttons --------------------------------------------------------------


def test_d2_reveal_and_check_show_under_the_card(shell, shown):
    run(shell, "%ask q5")
    card = widget_of(shown[0])
    card.reveal_button.click()
    assert card.revealed and card.reveal_button.description == "Hide answer"
    card.reveal_button.click()
    assert not card.revealed
    card.check_button.click()  # empty answer: the error shows under the card
    assert views.output_text(card.output) == (
        "UsageError: The answer box is empty: write your answer, then press Check.\n"
    )
    assert not card.check_button.disabled


def test_d2_a_failing_check_shows_its_traceback_under_the_card(shell, shown):
    run(shell, "%ask q5")
    card = widget_of(shown[0])
    card._check = lambda text: 1 / 0
    card.answer_box.value = "accuracy"
    card.check_button.click()
    assert "ZeroDivisionError" in views.output_text(card.output)
    assert not card.check_button.disabled


def test_instructor_mode_hides_the_answer(shell, shown):
    run(shell, "%config LLMApps.instructor_mode = True")
    run(shell, "%ask q6 -o item")
    card = widget_of(shown[0])
    assert card.reveal_button is None and card.answer_view.value == ""
    assert "Dropout" not in shown[0]["text/html"]
    assert "answer" not in shell.user_ns["item"].columns


def test_feedback_in_instructor_mode_counts_missed_points():
    item = load_bank("en").get("q6")
    feedback = [
        {"point": p, "term": p.split(":")[0], "score": 0.9 * (i < 2), "covered": i < 2}
        for i, p in enumerate(item.key_points)
    ]
    text, html = views.feedback_views(item, feedback, instructor=True)
    assert "You covered 2 of 6 key points." in text
    assert "4 key point(s) missed." in text and "Dropout" not in html


# -- %quiz ----------------------------------------------------------------------


def test_quiz_results_reach_python_and_csv(shell, shown, tmp_path):
    path = tmp_path / "class.csv"
    run(shell, f"%quiz --n 3 --seed 1 -o r --csv {path}")
    quiz = widget_of(shown[0])
    assert len(shell.user_ns["r"]) == 0
    quiz.reveal_button.click()
    quiz.knew_button.click()
    quiz.next_button.click()
    quiz.answer_box.value = "no idea"
    quiz.reveal_button.click()
    quiz.missed_button.click()
    quiz.next_button.click()
    assert len(shell.user_ns["r"]) == 2  # the table fills as answers arrive
    quiz.next_button.click()  # unanswered: skipped
    assert quiz.finished and "Score: 1.0 / 3" in quiz.question_view.value

    table = shell.user_ns["r"]
    assert list(table["mode"]) == ["self-check", "self-check", "skipped"]
    assert list(table["score"]) == [1.0, 0.0, 0.0]
    assert list(table["id"]) == [item.id for item in quiz.items]
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [row["answer"] for row in rows] == ["", "no idea", ""]

    run(shell, "%quiz --results -o again")
    assert shell.user_ns["again"].equals(table)


@pytest.mark.parametrize(
    "target, expected",
    [
        (
            "{tmp}",
            "`--csv {tmp}` is a folder: name a file in it, like "
            "`--csv {tmp}/results.csv`.",
        ),
        (
            "/proc/x.csv",
            "Cannot write `--csv /proc/x.csv` (No such file or directory): use a "
            "file in a folder you can write, like `--csv results.csv`.",
        ),
    ],
)
def test_quiz_csv_that_cannot_be_written_is_one_line_before_the_quiz(
    shell, shown, capsys, tmp_path, target, expected
):
    cell = f"%quiz -o r --csv {target.format(tmp=tmp_path)}"
    line = usage_error(shell, cell, capsys)
    assert line == "UsageError: " + expected.format(tmp=tmp_path)
    assert shown == [] and "r" not in shell.user_ns  # no quiz, no table


def test_quiz_picks_by_topic_and_seed(shell, shown):
    run(shell, "%quiz --n 2 --topic training --seed 3")
    run(shell, "%quiz --n 2 --topic Training --seed 3")
    first, second = (widget_of(b) for b in shown)
    assert [i.id for i in first.items] == [i.id for i in second.items]
    assert {i.topic for i in first.items} == {"Training"}


def test_quiz_instructor_mode_has_no_reveal(shell, shown):
    run(shell, "%config LLMApps.instructor_mode = True")
    run(shell, "%quiz --n 1 --seed 0")
    quiz = widget_of(shown[0])
    assert quiz.reveal_button not in quiz.buttons.children
    assert quiz.answer_view.value == ""


@pytest.mark.parametrize(
    "cell, expected",
    [
        (
            "%quiz --topic Cooking",
            "`--topic Cooking` has no questions: use one of Basics",
        ),
        ("%quiz --n 0", "`--n 0` asks for no questions: use `--n 5`."),
        (
            "%quiz --results",
            "No quiz has run in this kernel yet: start one with `%quiz`.",
        ),
        ("%quiz -o 1x", "`-o 1x` is not a variable name"),
        ("%quiz --csv /no/such/dir/r.csv", "folder `/no/such/dir` does not exist"),
    ],
)
def test_quiz_mistakes_are_one_line(shell, capsys, cell, expected):
    assert expected in usage_error(shell, cell, capsys)


# -- with the real MiniLM --------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    """MiniLM loaded once for the module's real-model tests."""
    from ipyllmapps.models import embed

    return embed.load("minilm", device="cpu", dtype="float32", offline=True)


@pytest.fixture
def with_minilm(shell, minilm):
    """The shell, its manager holding (a view of) the shared MiniLM."""
    from ipyllmapps.models.embed import EmbedBundle

    view = EmbedBundle(
        model=minilm.model, tokenizer=minilm.tokenizer, max_tokens=minilm.max_tokens
    )
    ipyllmapps.manager().register("minilm", view, "embed")
    return shell


@pytest.mark.real
def test_search_ranks_the_overfitting_question_first(with_minilm, shown):
    shell = with_minilm
    run(shell, '%ask "how do I keep my model from overfitting" -o hits')
    hits = shell.user_ns["hits"]
    assert list(hits["id"])[0] == "q6" and len(hits) == 3
    assert hits["score"].is_monotonic_decreasing
    assert shown[0]["text/plain"].startswith("q6")
    run(shell, '%ask --lang zh "怎样避免过拟合" -o zh_hits')
    assert shell.user_ns["zh_hits"]["id"][0] == "q6"


@pytest.mark.real
def test_quoted_text_with_braces_searches(with_minilm, shown):
    shell = with_minilm
    run(shell, '%ask "{a, b} notation for overfitting" -o hits')
    hits = shell.user_ns["hits"]
    assert len(hits) == 3 and hits["score"].is_monotonic_decreasing
    assert shown[0]["text/plain"].startswith(hits["id"][0])


@pytest.mark.real
@pytest.mark.parametrize(
    "lang, answer",
    [
        ("en", "I would use dropout and early stopping."),
        ("zh", "可以使用Dropout和早期停止。"),
    ],
)
def test_feedback_marks_dropout_and_early_stopping_only(
    with_minilm, shown, lang, answer
):
    shell = with_minilm
    run(shell, f"%ask q6 --lang {lang}")
    card = widget_of(shown[0])
    card.answer_box.value = answer
    card.check_button.click()
    text = views.output_text(card.output)
    covered = [line[4:] for line in text.splitlines() if line.startswith("  ✓")]
    missed = [line[4:] for line in text.splitlines() if line.startswith("  ✗")]
    terms = [p.split(":")[0].split("：")[0] for p in card.item.key_points]
    assert covered == [terms[3], terms[4]]  # early stopping, dropout
    assert missed == [terms[0], terms[1], terms[2], terms[5]]
    assert "2 of 6" in text or "6 个要点中的 2 个" in text


@pytest.mark.real
def test_quiz_check_scores_by_key_points(with_minilm, shown):
    shell = with_minilm
    run(shell, "%quiz --n 3 --topic Training --seed 0 -o r")
    quiz = widget_of(shown[0])
    while quiz.current.id != "q6":
        quiz.next_button.click()
    quiz.answer_box.value = "Use dropout, and early stopping on the validation set."
    quiz.check_button.click()
    record = shell.user_ns["r"].set_index("id").loc["q6"]
    assert record["mode"] == "key points" and record["covered"] == 2
    assert record["score"] == pytest.approx(2 / 6, abs=1e-3)
