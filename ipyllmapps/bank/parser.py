"""Parse a question bank written in Markdown, in the seed document's layout.

A bank is a Markdown file like this::

    ### Interview questions

    #### 1. What is a large model?

    **Topic:** Basics
    **Question:** Explain what a large model is and list its features.
    **Answer:**

    Large models are deep networks with ...

    - **Huge training data:** ...
    - **Huge parameter counts:** ...

    **Explanation:** Training them takes ...

    ### Programming problems

    #### 1. Train a text classifier

    **Question:** Fine-tune a pretrained model to classify headlines.
    **Answer:**

    ```ipython
    %finetune classify --data headlines.csv --name headlines
    ```

Rules:

- ``#``, ``##`` and ``###`` headings start a section. A section whose heading
  names programming problems (it contains ``programming``, ``problem``,
  ``coding``, ``exercise``, ``编程`` or ``练习``) holds problems (ids ``p1``,
  ``p2``, ...); any other holds questions (ids ``q1``, ``q2``, ...). Items
  before any heading are questions.
- ``#### N. Title`` starts item ``N``; a number appears once per kind.
- An item has a question part, then an answer part, then an optional
  explanation part, each opened by a bold label on its own line: ``Question``
  / ``题目`` / ``问题``, ``Answer`` / ``答案``, ``Explanation`` / ``解析``, with
  ``:`` or ``：`` inside or after the bold. An optional ``Topic`` / ``主题``
  line names the item's topic (``General`` when absent).
- The answer's top-level bullet items are its key points, used by the answer
  feedback. A problem's fenced code blocks are the magics that solve it.

A file that breaks these rules raises :class:`~ipyllmapps.errors.UserError`
naming the file, the line and what to write instead.
"""

import re
from dataclasses import dataclass, field

from ipyllmapps.errors import UserError

DEFAULT_TOPIC = "General"

_LABELS = {
    "question": ("question", "题目", "问题"),
    "topic": ("topic", "主题"),
    "answer": ("answer", "答案"),
    "explanation": ("explanation", "解析"),
}
_PART = re.compile(
    r"^\*\*\s*(?P<label>[^*:：]+?)\s*[:：]?\s*\*\*\s*[:：]?\s*(?P<rest>.*)$"
)
_SECTION = re.compile(r"^#{1,3}\s+(?P<text>.*)$")
_ITEM = re.compile(r"^####\s+(?P<text>.*)$")
_NUMBERED = re.compile(r"^(?P<number>\d+)\s*[.、．)]\s*(?P<title>\S.*)$")
_PROBLEM_WORDS = ("programming", "problem", "coding", "exercise", "编程", "练习")
_BULLET = re.compile(r"^[-*+]\s+(?P<text>.+)$")
_FENCE = re.compile(r"^(```|~~~)")


@dataclass
class Item:
    """One question or programming problem of a bank."""

    id: str
    number: int
    kind: str  # "question" or "problem"
    title: str
    question: str
    answer: str
    explanation: str = ""
    topic: str = DEFAULT_TOPIC
    key_points: list = field(default_factory=list)
    magics: list = field(default_factory=list)
    line: int = 0

    def summary(self):
        """Describe the item in a few plain fields (for lists and the sidebar)."""
        return {
            "id": self.id,
            "title": self.title,
            "topic": self.topic,
            "kind": self.kind,
        }


def parse_bank(text, source="<bank>"):
    """Parse a bank's Markdown ``text`` into a list of :class:`Item`.

    Parameters
    ----------
    text : str
        The Markdown.
    source : str
        Named in error messages (the file name).

    Returns
    -------
    list of Item

    Examples
    --------
    >>> text = "#### 1. Hi\\n**Question:** Why?\\n**Answer:**\\n- because\\n"
    >>> items = parse_bank(text)
    >>> items[0].id, items[0].key_points
    ('q1', ['because'])
    """
    return _Parser(source).run(text.splitlines())


class _Parser:
    def __init__(self, source):
        self.source = source
        self.kind = "question"
        self.items = []
        self.current = None  # the item being read: a dict of parts
        self.part = None
        self.in_fence = False
        self.chinese = False

    def run(self, lines):
        self.chinese = any(
            line.lstrip().startswith(("**题目", "**答案")) for line in lines
        )
        for number, line in enumerate(lines, start=1):
            self._line(number, line)
        self._finish(len(lines) + 1)
        if not self.items:
            raise UserError(
                f"{self.source}: no items found: start each one with a numbered "
                "heading like `#### 1. What is a large model?`."
            )
        return self.items

    def _line(self, number, line):
        stripped = line.strip()
        if _FENCE.match(stripped):
            self.in_fence = not self.in_fence
        elif not self.in_fence:
            item = _ITEM.match(stripped)
            if item:
                self._finish(number)
                self._start(number, item.group("text").strip())
                return
            section = _SECTION.match(stripped)
            if section:
                self._finish(number)
                text = section.group("text").lower()
                problems = any(word in text for word in _PROBLEM_WORDS)
                self.kind = "problem" if problems else "question"
                return
            part = _PART.match(stripped)
            if part and self.current is not None:
                name = _part_name(part.group("label"))
                if name is not None:
                    self._open_part(number, name, part.group("rest"))
                    return
        if self.current is None:
            return  # an introduction between a section heading and its items
        if self.part is None:
            if stripped:
                raise self._error(
                    number,
                    f"`{_clip(stripped)}` comes before the question: open it with "
                    f"`{self._label('question')}` on its own line",
                )
            return
        self.current[self.part].append(line)

    def _start(self, number, text):
        match = _NUMBERED.match(text)
        if match is None:
            raise self._error(
                number,
                f"`#### {_clip(text)}` is not a numbered item: write it like "
                "`#### 3. How do I avoid overfitting?`",
            )
        item_number = int(match.group("number"))
        prefix = "p" if self.kind == "problem" else "q"
        item_id = f"{prefix}{item_number}"
        if item_number < 1 or any(i.id == item_id for i in self.items):
            raise self._error(
                number,
                f"item number {item_number} is "
                f"{'used twice' if item_number else 'zero'}"
                f" among the {self.kind}s: number them 1, 2, 3, ...",
            )
        self.current = {
            "id": item_id,
            "number": item_number,
            "line": number,
            "title": match.group("title").strip(),
            "question": [],
            "topic": [],
            "answer": [],
            "explanation": [],
        }
        self.part = None

    def _open_part(self, number, name, rest):
        item = self.current
        order = ("question", "answer", "explanation")
        if name == "topic":
            item["topic"] = [rest]
            return
        if name in order[1:] and not item["question"]:
            raise self._error(
                number,
                f"the {name} of item {item['number']} comes before its question: "
                f"add `{self._label('question')} ...` above it",
            )
        if name == "explanation" and not item["answer"]:
            raise self._error(
                number,
                f"the explanation of item {item['number']} comes before its answer: "
                f"add `{self._label('answer')}` above it",
            )
        if item[name]:
            raise self._error(
                number,
                f"item {item['number']} has a second `{self._label(name)}` part: "
                "keep one, or start a new item with `#### N. Title`",
            )
        self.part = name
        item[name] = [rest] if rest.strip() else [""]

    def _finish(self, number):
        """Close the item being read, checking it has its parts."""
        if self.in_fence:
            raise self._error(number - 1, "a ``` code block is never closed: add ```")
        item = self.current
        self.current, self.part = None, None
        if item is None:
            return
        for name in ("question", "answer"):
            if not _join(item[name]):
                raise self._error(
                    item["line"],
                    f"item {item['number']} (`{_clip(item['title'])}`) has no "
                    f"{name}: add `{self._label(name)} ...` below its heading",
                )
        answer = _join(item["answer"])
        self.items.append(
            Item(
                id=item["id"],
                number=item["number"],
                kind=self.kind,
                title=item["title"],
                question=_join(item["question"]),
                answer=answer,
                explanation=_join(item["explanation"]),
                topic=_join(item["topic"]) or DEFAULT_TOPIC,
                key_points=key_points(answer),
                magics=code_blocks(answer),
                line=item["line"],
            )
        )

    def _label(self, name):
        """The label to suggest, in the language the bank's labels use."""
        if self.chinese:
            return f"**{_LABELS[name][1]}：**"
        return f"**{_LABELS[name][0].capitalize()}:**"

    def _error(self, number, message):
        return UserError(f"{self.source}, line {number}: {message}.")


def key_points(answer):
    """Return the top-level bullet items of an answer, without Markdown bold.

    Examples
    --------
    >>> key_points("Methods:\\n\\n- **Dropout:** drop units\\n- Early stopping")
    ['Dropout: drop units', 'Early stopping']
    """
    points = []
    in_fence = False
    for line in answer.splitlines():
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
            continue
        bullet = _BULLET.match(line)  # top level: no indentation
        if bullet and not in_fence:
            points.append(plain(bullet.group("text")))
    return points


def code_blocks(answer):
    """Return the text of each fenced code block in ``answer``."""
    blocks, current = [], None
    for line in answer.splitlines():
        if _FENCE.match(line.strip()):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current).strip())
                current = None
        elif current is not None:
            current.append(line)
    return [block for block in blocks if block]


def plain(text):
    """Strip Markdown bold, italics and code marks from one line."""
    text = re.sub(r"(\*\*|__|`)", "", text)
    return " ".join(text.split())


def _part_name(label):
    label = label.strip().lower()
    for name, labels in _LABELS.items():
        if label in labels:
            return name
    return None


def _join(lines):
    return "\n".join(lines).strip()


def _clip(text, width=50):
    return text if len(text) <= width else text[: width - 1] + "…"
