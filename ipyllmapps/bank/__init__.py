"""The question bank: the seed's interview questions and programming problems.

Two banks come with the package, ``zh`` (the seed's Chinese text) and ``en``
(a translation), with the same ids: questions ``q1``...``q20`` and problems
``p1``...``p5``. A teacher's own bank is a Markdown file in the same layout
(see :mod:`ipyllmapps.bank.parser`), loaded with ``load_bank(path=...)`` or
``%ask --bank FILE.md``.

Examples
--------
>>> from ipyllmapps.bank import load_bank
>>> bank = load_bank("en")
>>> bank.get("q6").title
'How do you avoid overfitting when training a large AI model?'
"""

import functools
import re
from importlib import resources
from pathlib import Path

from ipyllmapps.bank.parser import Item, parse_bank
from ipyllmapps.errors import UserError

__all__ = ["Bank", "Item", "LANGUAGES", "load_bank"]

LANGUAGES = ("en", "zh")
_ID = re.compile(r"^(?P<prefix>[qpQP])(?P<number>\d+)$")


class Bank:
    """The items of one bank, in file order.

    Parameters
    ----------
    items : list of Item
    lang : str
        ``en`` or ``zh`` for a bundled bank.
    path : str, optional
        The file of a teacher's bank; ``None`` for a bundled one.
    """

    def __init__(self, items, lang, path=None):
        self.items = list(items)
        self.lang = lang
        self.path = path
        self._by_id = {item.id: item for item in self.items}

    @property
    def bundled(self):
        return self.path is None

    @property
    def questions(self):
        return [item for item in self.items if item.kind == "question"]

    @property
    def problems(self):
        return [item for item in self.items if item.kind == "problem"]

    def topics(self):
        """Return the topics in the order they first appear."""
        return list(dict.fromkeys(item.topic for item in self.items))

    def get(self, item_id):
        """Return the item ``item_id`` (like ``q5`` or ``p1``).

        Raises
        ------
        UserError
            Naming the ids this bank has.
        """
        match = _ID.match(item_id)
        key = f"{match['prefix'].lower()}{int(match['number'])}" if match else item_id
        if key not in self._by_id:
            raise UserError(f"`{item_id}` is not in this bank: {self.describe_ids()}.")
        return self._by_id[key]

    def describe_ids(self):
        """Say which ids exist: ``questions are `q1`-`q20`, problems are ...``."""
        parts = []
        for kind, items in (("questions", self.questions), ("problems", self.problems)):
            if items:
                parts.append(f"{kind} are {_ranges([i.id for i in items])}")
        return ", ".join(parts)

    def by_topic(self):
        """Return ``{topic: [items]}`` in the order topics first appear."""
        groups = {}
        for item in self.items:
            groups.setdefault(item.topic, []).append(item)
        return groups


def load_bank(lang="en", path=None):
    """Load a bundled bank by language, or a teacher's bank from ``path``.

    Parameters
    ----------
    lang : {"en", "zh"}
        The bundled bank to load (ignored when ``path`` is given, except to
        label the bank).
    path : str or Path, optional
        A Markdown file in the bank layout.

    Returns
    -------
    Bank

    Raises
    ------
    UserError
        For an unknown language, a missing file, or a malformed bank (naming the
        line).
    """
    lang = (lang or "en").strip().lower()
    if lang not in LANGUAGES:
        raise UserError(f"`{lang}` is not a bank language: use `en` or `zh`.")
    if path is None:
        return _bundled(lang)
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"`{path}` is not a file: give the path of a Markdown bank, like "
            "`--bank my_questions.md`."
        )
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(
            f"`{path}` is not UTF-8 text: save it as UTF-8 Markdown."
        ) from None
    return Bank(parse_bank(text, source=file.name), lang, path=str(file))


@functools.cache
def _bundled(lang):
    text = resources.files(__name__).joinpath(f"{lang}.md").read_text(encoding="utf-8")
    return Bank(parse_bank(text, source=f"{lang}.md"), lang)


def _ranges(ids):
    """Write ids compactly: ``q1``-``q20``, or a list when they have gaps."""
    numbers = [int(i[1:]) for i in ids]
    if numbers == list(range(numbers[0], numbers[0] + len(numbers))) and len(ids) > 2:
        return f"`{ids[0]}`-`{ids[-1]}`"
    return ", ".join(f"`{i}`" for i in ids)
