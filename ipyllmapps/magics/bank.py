"""``%ask`` and ``%quiz``: the question bank, for teaching sessions."""

import csv
import random
import re
from pathlib import Path

from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from ipyllmapps.bank import load_bank
from ipyllmapps.bank.grading import item_texts, key_point_feedback, search
from ipyllmapps.errors import UserError, user_errors
from ipyllmapps.magics._base import AppMagics, check_variable_name, parse

RESULT_COLUMNS = (
    "id",
    "title",
    "topic",
    "mode",
    "answer",
    "score",
    "covered",
    "missed",
)
_ID = re.compile(r"^[qpQP]\d+$")
_VARIABLE = re.compile(r"\$\{?(?P<dollar>[A-Za-z_]\w*)\}?|\{(?P<brace>[^{}]*)\}")
_CACHE_LIMIT = 5000  # embedded texts kept per kernel


@magics_class
class BankMagics(AppMagics):
    """The ``%ask`` and ``%quiz`` magics."""

    def __init__(self, shell, extension):
        super().__init__(shell, extension)
        self._vectors = {}  # text -> MiniLM vector, so a bank is embedded once
        self.last_quiz = None

    @magic_arguments()
    @argument(
        "target",
        nargs="*",
        help="`q5` for a question, `p1` for a problem, or quoted text to "
        "search for; nothing lists the bank",
    )
    @argument(
        "--lang",
        help="bank language, `en` or `zh` (default: `%%config LLMApps.language`)",
    )
    @argument("--bank", metavar="FILE.md", help="a teacher's bank in the same layout")
    @argument(
        "--insert",
        action="store_true",
        help="with a problem: put its magic in a new cell below",
    )
    @argument("-o", "--out", help="store the item(s) or the matches in this variable")
    @no_var_expand
    @line_magic
    @user_errors
    def ask(self, line):
        """Show a question or problem of the bank, list the bank, or search it.

        Questions are ``q1``-``q20`` (the seed's interview questions) and
        problems ``p1``-``p5``. A question card hides the answer and
        explanation behind *Show answer* (hidden altogether with
        ``%config LLMApps.instructor_mode = True``); *Check* compares what you
        write with the answer's key points and shows which you covered. A
        problem card shows the magic that solves it and a button that inserts
        it as the next cell (through the ipyllmapps sidebar; ``--insert`` does
        it from the magic itself, as IPython's ``set_next_input``). Quoted
        text searches the bank by meaning with the offline MiniLM encoder and
        shows the three best matches; ``-o NAME`` stores them as records with
        ``id`` and ``score``.

        Variables are never expanded: ``%ask q$n`` and ``%ask {n}`` are
        refused with a message saying what to type.

        Examples
        --------
        ::

            %ask                             # the bank, grouped by topic
            %ask q5                          # question 5 as a card
            %ask q5 --lang zh                # the same question in Chinese
            %ask p1                          # problem 1 and the magic that solves it
            %ask p1 --insert                 # ... inserted as the next cell
            %ask "how do I keep my model from overfitting" -o hits
            %ask --bank my_questions.md q1   # a teacher's own bank
        """
        args = parse(self.ask, line)
        if args is None:
            return
        bank = self._bank(args)
        target = " ".join(args.target).strip()
        typed = [word for word in args.target if not _quoted(word, line)]
        _refuse_variables(" ".join(typed), self.shell.user_ns, "%ask")
        _refuse_several_ids(typed)

        if not target:
            _views().show_listing(bank)
            self.store(args.out, [item.summary() for item in bank.items])
        elif _looks_like_id(args.target, line):
            self._show_item(bank, target, args)
        else:
            self._search(bank, target, args.out)

    @magic_arguments()
    @argument("--n", type=int, default=5, help="number of questions (default 5)")
    @argument("--topic", help="only questions of this topic (see `%%ask`)")
    @argument("--seed", type=int, help="pick the same questions every time")
    @argument("--lang", help="bank language, `en` or `zh`")
    @argument("--bank", metavar="FILE.md", help="a teacher's bank in the same layout")
    @argument("-o", "--out", help="keep the results table in this variable")
    @argument("--csv", metavar="FILE", help="keep the results in this CSV file")
    @argument(
        "--results",
        action="store_true",
        help="show (and store) the last quiz's results instead of a new quiz",
    )
    @no_var_expand
    @line_magic
    @user_errors
    def quiz(self, line):
        """Run a quiz: one question at a time, with feedback and a final score.

        Each question has a text box. *Check* scores the answer by the key
        points it covers (0 to 1); *Show answer* reveals the reference answer
        for a self-check (*I knew it* scores 1, *I missed it* 0; hidden in
        instructor mode); *Next* moves on (an unanswered question scores 0).

        Results reach Python while the quiz runs: ``-o NAME`` binds NAME to
        the results table at once (a DataFrame when pandas is installed) and
        binds it again to the updated table after every recorded answer, so
        NAME always holds the answers so far; ``--csv FILE`` rewrites FILE the
        same way. Columns: id, title, topic, mode (``key points``,
        ``self-check`` or ``skipped``), answer, score, covered, missed.
        ``%quiz --results -o NAME`` (or ``--csv FILE``) collects the last
        quiz's results afterwards without starting a new one.

        Examples
        --------
        ::

            %quiz                            # five random questions
            %quiz --n 3 --topic Training --seed 1 -o results
            %quiz --lang zh --csv class1.csv
            %quiz --results -o results       # the last quiz's table
        """
        args = parse(self.quiz, line)
        if args is None:
            return
        if args.results:
            self._quiz_results(args)
            return
        bank = self._bank(args)
        if args.n < 1:
            raise UserError(f"`--n {args.n}` asks for no questions: use `--n 5`.")
        pool = _by_topic(bank, args.topic)
        chosen = random.Random(args.seed).sample(pool, min(args.n, len(pool)))

        if args.out:
            check_variable_name(args.out)
        if args.csv:
            _write_csv(args.csv, [])
        self.store(args.out, [])

        def on_result(records):
            self.store(args.out, records)
            if args.csv:
                _write_csv(args.csv, records)

        view = _views().QuizView(
            chosen, self._check, on_result, instructor=self.config_obj.instructor_mode
        )
        self.last_quiz = view
        view.show()

    # -- %ask ----------------------------------------------------------------

    def _bank(self, args):
        return load_bank(args.lang or self.config_obj.language, path=args.bank)

    def _show_item(self, bank, target, args):
        item = bank.get(target)
        if item.kind == "problem":
            card = _views().ProblemCard(item, lambda code: self._insert(item, code))
            if args.insert:
                self.shell.set_next_input(_cell_of(item), replace=False)
        else:
            if args.insert:
                raise UserError(
                    f"`--insert` works with problems, and `{item.id}` is a "
                    "question: try `%ask p1 --insert`."
                )
            card = _views().QuestionCard(
                item,
                lambda text: self._check(text, item),
                instructor=self.config_obj.instructor_mode,
            )
        card.show()
        record = dict(item.summary(), question=item.question)
        if not self.config_obj.instructor_mode:
            record.update(answer=item.answer, key_points=item.key_points)
        self.store(args.out, [record])

    def _search(self, bank, query, out):
        documents = [item_texts(item) for item in bank.items]
        if bank.bundled:  # the other language's text of the same item helps too
            other = load_bank("zh" if bank.lang == "en" else "en")
            for texts, item in zip(documents, bank.items):
                if item.id in {i.id for i in other.items}:
                    texts.extend(item_texts(other.get(item.id)))
        matches = [
            (bank.items[index], score)
            for index, score in search(self._embed, query, documents, k=3)
        ]
        _views().show_matches(matches)
        self.store(out, [dict(item.summary(), score=score) for item, score in matches])

    def _insert(self, item, code):
        """Ask the ipyllmapps sidebar (when open) to insert ``code`` as a cell."""
        if self.extension.comm.insert_cell(code):
            return "Inserted as a new cell below the active cell."
        return (
            f"Copy the magic above into a new cell, or run "
            f"`%ask {item.id} --insert` to have it inserted below."
        )

    # -- grading -------------------------------------------------------------

    def _check(self, answer, item):
        if not answer.strip():
            raise UserError(
                "The answer box is empty: write your answer, then press Check."
            )
        return key_point_feedback(self._embed, answer, item.key_points)

    def _embed(self, texts):
        """Unit MiniLM vectors for ``texts``, each text embedded once per kernel."""
        import numpy as np

        from ipyllmapps.models.embed import encode

        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:
            if len(self._vectors) + len(missing) > _CACHE_LIMIT:
                self._vectors.clear()
            entry = self.manager.load("minilm", "embed")
            self._vectors.update(zip(missing, encode(entry.bundle, missing)))
        return np.stack([self._vectors[text] for text in texts])

    # -- %quiz ---------------------------------------------------------------

    def _quiz_results(self, args):
        quiz = self.last_quiz
        if quiz is None:
            raise UserError(
                "No quiz has run in this kernel yet: start one with `%quiz`."
            )
        self.store(args.out, quiz.results)
        if args.csv:
            _write_csv(args.csv, quiz.results)
        _views().show_results(quiz.results, len(quiz.items))


def _looks_like_id(tokens, line):
    """Whether the target is one unquoted word (an id), not text to search."""
    if len(tokens) != 1 or re.search(r"\s", tokens[0]):
        return False
    word = tokens[0]
    if _quoted(word, line):
        return False
    if _ID.match(word):
        return True
    raise UserError(
        f"`{word}` is not a question id: use one like `q5` or `p1`, or quote text "
        f'to search the bank: `%ask "{word}"`.'
    )


def _quoted(word, line):
    """Whether ``word`` was typed inside quotes on the magic's line."""
    return f'"{word}"' in line or f"'{word}'" in line


def _refuse_several_ids(words):
    """Refuse ``%ask q1 q2``: one item at a time, or quoted text to search."""
    ids = [word for word in words if _ID.match(word)]
    if len(words) < 2 or not ids:
        return
    then = f", then `%ask {ids[1]}`" if len(ids) > 1 else ""
    raise UserError(
        f"`%ask` shows one item at a time: type `%ask {ids[0]}`{then}; to search, "
        f'quote the text: `%ask "{" ".join(words)}"`.'
    )


def _refuse_variables(text, namespace, magic):
    """Refuse ``$name`` and ``{name}``: variables are never expanded."""
    match = _VARIABLE.search(text)
    if match is None:
        return
    name = (match.group("dollar") or match.group("brace") or "").strip()
    value = namespace.get(name) if name.isidentifier() else None
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        value = str(value)
        suggestion = text[: match.start()] + value + text[match.end() :]
        if suggestion.isdigit():
            suggestion = f"q{suggestion}"
    else:
        suggestion = "q1"
    raise UserError(
        f"`{text}` is not a question: variables are not expanded here; type "
        f"`{magic} {suggestion}`."
    )


def _by_topic(bank, topic):
    questions = bank.questions
    if not questions:
        raise UserError(
            "This bank has no questions to quiz on: add `#### 1. ...` items."
        )
    if topic is None:
        return questions
    chosen = [item for item in questions if item.topic.lower() == topic.lower()]
    if not chosen:
        topics = ", ".join(dict.fromkeys(item.topic for item in questions))
        raise UserError(f"`--topic {topic}` has no questions: use one of {topics}.")
    return chosen


def _cell_of(item):
    """The cell to insert for a problem: its magics, a cell magic on its own."""
    if any(block.startswith("%%") for block in item.magics):
        return item.magics[0]
    return "\n".join(item.magics)


def _write_csv(path, records):
    file = Path(path).expanduser()
    if file.is_dir():
        raise UserError(
            f"`--csv {path}` is a folder: name a file in it, like "
            f"`--csv {Path(path) / 'results.csv'}`."
        )
    if not file.parent.is_dir():
        raise UserError(
            f"`--csv {path}`: folder `{file.parent}` does not exist; "
            "create it or use `--csv results.csv`."
        )
    try:
        with file.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(records)
    except OSError as exc:
        raise UserError(
            f"Cannot write `--csv {path}` ({exc.strerror or type(exc).__name__}): "
            "use a file in a folder you can write, like `--csv results.csv`."
        ) from None


def _views():
    """The bank's widgets, imported on first display so `%load_ext` stays light."""
    from ipyllmapps.widgets import bank

    return bank
