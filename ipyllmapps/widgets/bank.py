"""Question cards, problem cards, the bank's listing and the quiz.

The widgets receive plain data (bank items, feedback dicts) and callables
(``check(text) -> feedback``, ``insert(code) -> message``); they never load a
model themselves. What a button's callback shows, an error included, is
written into the card's own ``output`` through its ``outputs`` trait, so it
appears under that card in JupyterLab whichever cell runs meanwhile, and tests
can read it without a kernel.
"""

import html as _html
import re

import ipywidgets as w

from ipyllmapps.widgets._base import escape, run_guarded, show


class QuestionCard(w.VBox):
    """One question: its text, a hidden answer, an answer box and a Check button.

    Parameters
    ----------
    item : ipyllmapps.bank.Item
    check : callable
        ``check(answer_text)`` returns the key-point feedback (a list of dicts
        with ``point``, ``term``, ``score``, ``covered``).
    instructor : bool
        Hide the Reveal button (and, in feedback, the text of missed points).
    """

    def __init__(self, item, check, instructor=False):
        self.item = item
        self.instructor = instructor
        self._check = check
        # in instructor mode the answer is not even sent to the browser
        self.answer_view = w.HTML(
            "" if instructor else answer_html(item), layout=w.Layout(display="none")
        )
        self.answer_box = w.Textarea(
            placeholder=_t(item, "placeholder"),
            layout=w.Layout(width="100%", height="90px"),
        )
        self.check_button = w.Button(
            description=_t(item, "check"), button_style="primary", icon="check"
        )
        self.check_button.on_click(self._handle_check)
        buttons = [self.check_button]
        self.reveal_button = None
        if not instructor:
            self.reveal_button = w.Button(description=_t(item, "reveal"), icon="eye")
            self.reveal_button.on_click(self._handle_reveal)
            buttons.append(self.reveal_button)
        self.output = w.Output()
        super().__init__(
            [
                w.HTML(question_html(item)),
                self.answer_box,
                w.HBox(buttons),
                self.output,
                self.answer_view,
            ]
        )

    @property
    def revealed(self):
        return self.answer_view.layout.display != "none"

    def show(self):
        """Display the card with text and HTML fallbacks."""
        show(
            self,
            card_text(self.item),
            html=card_html(self.item, with_answer=not self.instructor),
        )

    def _handle_reveal(self, _button):
        def action():
            hidden = not self.revealed
            self.answer_view.layout.display = "" if hidden else "none"
            self.reveal_button.description = _t(
                self.item, "hide" if hidden else "reveal"
            )

        run_guarded(self.output, self.reveal_button, action)

    def _handle_check(self, _button):
        def action():
            feedback = self._check(self.answer_box.value)
            text, html = feedback_views(self.item, feedback, self.instructor)
            render(self.output, text, html)

        run_guarded(self.output, self.check_button, action)


class ProblemCard(w.VBox):
    """A programming problem with the magic cells that solve it.

    Parameters
    ----------
    item : ipyllmapps.bank.Item
    insert : callable
        ``insert(code)`` puts ``code`` in a new cell below and returns a line
        saying what happened.
    """

    def __init__(self, item, insert):
        self.item = item
        self._insert = insert
        self.output = w.Output()
        self.insert_buttons = []
        rows = []
        for number, code in enumerate(item.magics, start=1):
            label = _t(item, "insert")
            if len(item.magics) > 1:
                label = f"{label} {number}"
            button = w.Button(
                description=label,
                icon="plus",
                button_style="info",
                layout=w.Layout(width="auto"),
            )
            button.on_click(lambda b, code=code: self._handle_insert(b, code))
            self.insert_buttons.append(button)
            rows += [w.HTML(f"<pre>{escape(code)}</pre>"), button]
        super().__init__(
            [
                w.HTML(question_html(item)),
                *rows,
                self.output,
                w.HTML(_explanation_html(item)),
            ]
        )

    def show(self):
        show(self, card_text(self.item), html=card_html(self.item, with_answer=True))

    def _handle_insert(self, button, code):
        run_guarded(
            self.output, button, lambda: render(self.output, self._insert(code), None)
        )


class QuizView(w.VBox):
    """Questions one at a time, with self-check or key-point feedback, and a score.

    Parameters
    ----------
    items : list of ipyllmapps.bank.Item
    check : callable
        ``check(answer_text, item)`` returns key-point feedback.
    on_result : callable
        Called with the list of result records after every recorded answer.
    instructor : bool
        Hide the Reveal button, so only key-point feedback scores.
    """

    def __init__(self, items, check, on_result, instructor=False):
        self.items = list(items)
        self.instructor = instructor
        self.results = []
        self.index = 0
        self._check = check
        self._on_result = on_result
        first = self.items[0]
        self.progress = w.HTML()
        self.question_view = w.HTML()
        self.answer_box = w.Textarea(
            placeholder=_t(first, "placeholder"),
            layout=w.Layout(width="100%", height="90px"),
        )
        self.check_button = w.Button(
            description=_t(first, "check"), button_style="primary", icon="check"
        )
        self.reveal_button = w.Button(description=_t(first, "reveal"), icon="eye")
        self.knew_button = w.Button(
            description=_t(first, "knew"), button_style="success"
        )
        self.missed_button = w.Button(
            description=_t(first, "missed"), button_style="warning"
        )
        self.next_button = w.Button(description=_t(first, "next"), icon="arrow-right")
        self.answer_view = w.HTML(layout=w.Layout(display="none"))
        self.self_check = w.HBox(
            [self.knew_button, self.missed_button], layout=w.Layout(display="none")
        )
        self.output = w.Output()
        self.check_button.on_click(self._handle_check)
        self.reveal_button.on_click(self._handle_reveal)
        self.knew_button.on_click(lambda b: self._handle_self_check(b, 1.0))
        self.missed_button.on_click(lambda b: self._handle_self_check(b, 0.0))
        self.next_button.on_click(self._handle_next)
        buttons = [self.check_button, self.next_button]
        if not instructor:
            buttons.insert(1, self.reveal_button)
        self.buttons = w.HBox(buttons)
        super().__init__(
            [
                self.progress,
                self.question_view,
                self.answer_box,
                self.buttons,
                self.self_check,
                self.output,
                self.answer_view,
            ]
        )
        self._show_question()

    @property
    def current(self):
        return self.items[self.index] if self.index < len(self.items) else None

    @property
    def finished(self):
        return self.current is None

    def score(self):
        """Return the points earned so far (each question scores 0 to 1)."""
        return round(sum(r["score"] for r in self.results), 2)

    def show(self):
        show(self, quiz_text(self.items), html=quiz_html(self.items))

    def _show_question(self):
        item = self.current
        self.progress.value = (
            f"<b>{_t(item, 'question')} {self.index + 1} / "
            f"{len(self.items)}</b> · {escape(item.topic)}"
        )
        self.question_view.value = question_html(item)
        self.answer_view.value = "" if self.instructor else answer_html(item)
        self.answer_view.layout.display = "none"
        self.self_check.layout.display = "none"
        self.answer_box.value = ""
        self.output.outputs = ()
        last = self.index == len(self.items) - 1
        self.next_button.description = _t(item, "finish" if last else "next")

    def _handle_check(self, _button):
        def action():
            item = self.current
            answer = self.answer_box.value
            feedback = self._check(answer, item)
            text, html = feedback_views(item, feedback, self.instructor)
            render(self.output, text, html)
            covered = sum(f["covered"] for f in feedback)
            total = len(feedback)
            self._record(
                item,
                "key points",
                answer,
                covered / total if total else 0.0,
                covered,
                total - covered,
            )

        run_guarded(self.output, self.check_button, action)

    def _handle_reveal(self, _button):
        def action():
            self.answer_view.layout.display = ""
            self.self_check.layout.display = ""

        run_guarded(self.output, self.reveal_button, action)

    def _handle_self_check(self, button, score):
        def action():
            item = self.current
            self._record(item, "self-check", self.answer_box.value, score, None, None)
            render(self.output, _t(item, "knew_note" if score else "missed_note"), None)

        run_guarded(self.output, button, action)

    def _handle_next(self, _button):
        def action():
            item = self.current
            if not any(r["id"] == item.id for r in self.results):
                self._record(item, "skipped", self.answer_box.value, 0.0, None, None)
            self.index += 1
            if self.finished:
                self._show_score()
            else:
                self._show_question()

        run_guarded(self.output, self.next_button, action)

    def _record(self, item, mode, answer, score, covered, missed):
        record = {
            "id": item.id,
            "title": item.title,
            "topic": item.topic,
            "mode": mode,
            "answer": answer,
            "score": round(float(score), 3),
            "covered": covered,
            "missed": missed,
        }
        self.results = [r for r in self.results if r["id"] != item.id] + [record]
        self._on_result(list(self.results))

    def _show_score(self):
        item = self.items[-1]
        self.progress.value = f"<b>{_t(item, 'done')}</b>"
        self.question_view.value = score_html(self.results, len(self.items))
        for widget in (
            self.answer_box,
            self.buttons,
            self.self_check,
            self.answer_view,
        ):
            widget.layout.display = "none"
        self.output.outputs = ()


def show_listing(bank):
    """Display the bank's items grouped by topic (no widget: text and HTML)."""
    groups = bank.by_topic()
    lines, blocks = [], []
    for topic, items in groups.items():
        lines.append(f"{topic}:")
        lines += [f"  {item.id:<4} {item.title}" for item in items]
        rows = "".join(
            f"<li><code>%ask {item.id}</code> {escape(item.title)}</li>"
            for item in items
        )
        blocks.append(f"<h4>{escape(topic)}</h4><ul>{rows}</ul>")
    hint = 'Run `%ask q1` for a question, `%ask "text"` to search.'
    show(
        None,
        "\n".join(lines + ["", hint]),
        html="".join(blocks) + f"<p>{escape(hint)}</p>",
    )


def show_matches(matches):
    """Display search results: a list of ``(item, score)``."""
    text = "\n".join(
        f"{item.id:<4} {score:.2f}  {item.title}" for item, score in matches
    )
    rows = "".join(
        f"<tr><td><code>%ask {item.id}</code></td><td>{score:.2f}</td>"
        f"<td>{escape(item.title)}</td></tr>"
        for item, score in matches
    )
    show(None, text, html=f"<table><tbody>{rows}</tbody></table>")


def show_results(records, total):
    """Display a quiz's results (for ``%quiz --results``)."""
    show(None, results_text(records, total), html=score_html(records, total))


def render(output, text, html):
    """Replace what ``output`` shows with ``text`` (and ``html`` when given)."""
    data = {"text/plain": text}
    if html is not None:
        data["text/html"] = html
    output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


def output_text(output):
    """The plain text an Output widget shows (its display data and streams)."""
    parts = []
    for entry in output.outputs:
        if entry["output_type"] == "stream":
            parts.append(entry["text"])
        else:
            parts.append(entry.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def feedback_views(item, feedback, instructor=False):
    """Key-point feedback as text and HTML: covered and missed points."""
    if not feedback:
        line = _t(item, "no_points")
        return line, f"<p>{escape(line)}</p>"
    covered = [f for f in feedback if f["covered"]]
    missed = [f for f in feedback if not f["covered"]]
    head = _t(item, "summary").format(covered=len(covered), total=len(feedback))
    lines = [head] + [f"  ✓ {f['term']}" for f in covered]
    items = [f'<li style="color:#2e7d32">✓ {escape(f["term"])}</li>' for f in covered]
    if instructor:
        note = _t(item, "missed_count").format(missed=len(missed))
        lines.append(f"  {note}")
        items.append(f"<li>{escape(note)}</li>")
    else:
        lines += [f"  ✗ {f['term']}" for f in missed]
        items += [
            f'<li style="color:#c62828">✗ {escape(f["term"])}</li>' for f in missed
        ]
    return "\n".join(lines), f"<p><b>{escape(head)}</b></p><ul>{''.join(items)}</ul>"


def question_html(item):
    return (
        f'<div><span style="color:#666">{escape(item.id)} · {escape(item.topic)}'
        f'</span><h3 style="margin:4px 0">{escape(item.title)}</h3>'
        f"{markdown_html(item.question)}</div>"
    )


def answer_html(item):
    parts = [f"<h4>{escape(_t(item, 'answer'))}</h4>", markdown_html(item.answer)]
    parts.append(_explanation_html(item))
    return "".join(parts)


def card_text(item):
    """The card as plain text: id, title, question (and a problem's magics)."""
    lines = [f"{item.id} · {item.topic} — {item.title}", "", item.question]
    if item.kind == "problem":
        lines += ["", *item.magics]
    else:
        lines += ["", _t(item, "hidden_note")]
    return "\n".join(lines)


def card_html(item, with_answer):
    """The card as HTML for viewers without widgets; the answer folded away."""
    body = question_html(item)
    if item.kind == "problem":
        return body + answer_html(item)
    if with_answer:
        body += (
            f"<details><summary>{escape(_t(item, 'reveal'))}</summary>"
            f"{answer_html(item)}</details>"
        )
    return body


def quiz_text(items):
    return "\n".join(f"{n}. {item.title}" for n, item in enumerate(items, start=1))


def quiz_html(items):
    rows = "".join(f"<li>{escape(item.title)}</li>" for item in items)
    return f"<ol>{rows}</ol>"


def results_text(records, total):
    score = sum(r["score"] for r in records)
    lines = [
        f"{r['id']:<4} {r['mode']:<10} {r['score']:.2f}  {r['title']}" for r in records
    ]
    return "\n".join(lines + [f"Score: {score:.1f} / {total}"])


def score_html(records, total):
    score = sum(r["score"] for r in records)
    rows = "".join(
        f"<tr><td>{escape(r['id'])}</td><td>{escape(r['title'])}</td>"
        f"<td>{escape(r['mode'])}</td><td>{r['score']:.2f}</td></tr>"
        for r in records
    )
    return f"<h3>Score: {score:.1f} / {total}</h3><table><tbody>{rows}</tbody></table>"


def markdown_html(text):
    """Render the bank's Markdown (paragraphs, bullets, bold, code) as HTML."""
    blocks, paragraph, bullets, code = [], [], [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            if code is None:
                _flush(blocks, paragraph, bullets)
                code = []
            else:
                blocks.append(f"<pre>{escape(chr(10).join(code))}</pre>")
                code = None
        elif code is not None:
            code.append(line)
        elif re.match(r"^[-*+]\s+", stripped):
            if paragraph:
                _flush(blocks, paragraph, [])
            bullets.append(_inline(stripped[2:].strip()))
        elif not stripped:
            _flush(blocks, paragraph, bullets)
        else:
            paragraph.append(_inline(stripped))
    _flush(blocks, paragraph, bullets)
    return "".join(blocks)


def _flush(blocks, paragraph, bullets):
    if paragraph:
        blocks.append(f"<p>{' '.join(paragraph)}</p>")
        paragraph.clear()
    if bullets:
        blocks.append("<ul>" + "".join(f"<li>{b}</li>" for b in bullets) + "</ul>")
        bullets.clear()


def _inline(text):
    text = _html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _explanation_html(item):
    if not item.explanation:
        return ""
    return (
        f"<h4>{escape(_t(item, 'explanation'))}</h4>{markdown_html(item.explanation)}"
    )


_WORDS = {
    "en": {
        "check": "Check",
        "reveal": "Show answer",
        "hide": "Hide answer",
        "insert": "Insert as next cell",
        "next": "Next",
        "finish": "Finish",
        "knew": "I knew it",
        "missed": "I missed it",
        "question": "Question",
        "answer": "Answer",
        "explanation": "Explanation",
        "done": "Quiz finished",
        "placeholder": "Write your answer here, then press Check.",
        "summary": "You covered {covered} of {total} key points.",
        "missed_count": "{missed} key point(s) missed.",
        "no_points": "This answer has no key points to compare with: use Show answer.",
        "knew_note": "Recorded: you knew it.",
        "missed_note": "Recorded: you missed it.",
        "hidden_note": "(The answer is hidden: run the cell and press Show answer.)",
    },
    "zh": {
        "check": "检查",
        "reveal": "显示答案",
        "hide": "隐藏答案",
        "insert": "插入为下一个单元格",
        "next": "下一题",
        "finish": "完成",
        "knew": "我答对了",
        "missed": "我没答对",
        "question": "题目",
        "answer": "答案",
        "explanation": "解析",
        "done": "测验结束",
        "placeholder": "在这里写下你的答案，然后点击“检查”。",
        "summary": "你答到了 {total} 个要点中的 {covered} 个。",
        "missed_count": "漏掉了 {missed} 个要点。",
        "no_points": "这个答案没有可比较的要点：请点击“显示答案”。",
        "knew_note": "已记录：答对。",
        "missed_note": "已记录：没答对。",
        "hidden_note": "（答案已隐藏：运行单元格后点击“显示答案”。）",
    },
}


def _t(item, key):
    """A label in the item's language (Chinese when its question is Chinese)."""
    lang = "zh" if re.search(r"[\u4e00-\u9fff]", item.question) else "en"
    return _WORDS[lang][key]
