"""Answer feedback and search by meaning, with sentence embeddings.

Everything here takes an ``embed`` callable, ``embed(texts) -> array`` of
unit-length vectors (one row per text), so it runs with any encoder; the
magics pass MiniLM from the model manager (:func:`ipyllmapps.models.embed.encode`).
Nothing here imports IPython or ipywidgets.

A key point counts as covered when some clause of the student's answer is
close enough in meaning to it (cosine similarity at least :data:`THRESHOLD`)
or names its term word for word. A key point like ``Dropout: randomly drop
neurons ...`` is compared both as a whole and by its term (``Dropout``), so a
short answer that only names the method still matches it.

MiniLM is an English encoder: on Chinese text every pair of sentences looks
alike to it (cosine 0.5-0.7). So for Chinese key points and queries the
similarity is the share of a clause's character pairs (bigrams) found in the
point instead, which separates covered from missed points the same way.
"""

import re

THRESHOLD = 0.5  # measured on MiniLM: named or paraphrased points score 0.55-1.0,
# unrelated points of the same answer 0.1-0.45

_CLAUSE = re.compile(
    r"[.;,!?\n。；，、！？：:]+|\s+(?:and|or|also|then|plus)\s+|和|以及|并且|或者"
)
_HAN = re.compile(r"[\u4e00-\u9fff]")
_TERM = re.compile(r"^(?P<term>[^:：]{1,40})[:：]\s*\S")


def key_point_feedback(embed, answer, points, threshold=THRESHOLD):
    """Say which of the reference ``points`` a student's ``answer`` covers.

    Parameters
    ----------
    embed : callable
        ``embed(list_of_texts)`` returning unit vectors, shape ``(n, dim)``.
    answer : str
        The student's answer.
    points : list of str
        The reference answer's key points (its bullet items).
    threshold : float
        Least cosine similarity for a point to count as covered.

    Returns
    -------
    list of dict
        One per point, in order: ``point``, ``term`` (its name, or the point),
        ``score`` (best similarity, 0-1) and ``covered`` (bool).

    Examples
    --------
    >>> from ipyllmapps.bank.grading import key_point_feedback
    >>> key_point_feedback(embed, "dropout", ["Dropout: drop units"])  # doctest: +SKIP
    [{'point': 'Dropout: drop units', 'term': 'Dropout', 'score': 1.0, 'covered': True}]
    """
    points = list(points)
    if not points:
        return []
    clauses = split_clauses(answer)
    terms = [term_of(point) for point in points]
    if not clauses:
        return [
            {"point": p, "term": t, "score": 0.0, "covered": False}
            for p, t in zip(points, terms)
        ]
    vectors = embed(clauses + points + terms)
    answer_vectors = vectors[: len(clauses)]
    point_vectors = vectors[len(clauses) : len(clauses) + len(points)]
    term_vectors = vectors[len(clauses) + len(points) :]
    whole = (answer_vectors @ point_vectors.T).max(axis=0)
    named = (answer_vectors @ term_vectors.T).max(axis=0)
    lowered = answer.lower()
    feedback = []
    for index, (point, term) in enumerate(zip(points, terms)):
        if _is_chinese(point):
            score = max(_overlap(clause, point) for clause in clauses)
        else:
            score = max(float(whole[index]), float(named[index]))
        if _names(lowered, term):
            score = 1.0
        score = min(1.0, max(0.0, score))
        feedback.append(
            {
                "point": point,
                "term": term,
                "score": round(score, 3),
                "covered": score >= threshold,
            }
        )
    return feedback


def search(embed, query, documents, k=3):
    """Rank documents by meaning: return ``[(index, score), ...]``, best first.

    Parameters
    ----------
    embed : callable
        ``embed(list_of_texts)`` returning unit vectors.
    query : str
    documents : list of list of str
        Each document is one or more texts (a title, the question, the same
        item in another language); a document scores its best text.
    k : int
        How many to return.
    """
    texts, owners = [], []
    for index, parts in enumerate(documents):
        for text in parts:
            texts.append(text)
            owners.append(index)
    if not texts:
        return []
    vectors = embed([query] + texts)
    similarity = vectors[1:] @ vectors[0]
    chinese = _is_chinese(query)
    best = {}
    for owner, text, score in zip(owners, texts, similarity):
        score = float(score)
        if chinese:  # bigram overlap decides; the embedding only breaks ties
            score = 0.8 * _overlap(query, text) + 0.2 * score
        best[owner] = max(best.get(owner, -1.0), score)
    ranked = sorted(best.items(), key=lambda pair: -pair[1])
    return [(index, round(score, 3)) for index, score in ranked[:k]]


def item_texts(item):
    """The texts that stand for a bank item in a search: title and question."""
    return [item.title, item.question]


def split_clauses(text):
    """Split an answer into clauses: sentences, list items and ``and``-joined parts.

    Examples
    --------
    >>> split_clauses("I would use dropout and early stopping.")
    ['I would use dropout', 'early stopping']
    """
    parts = (" ".join(part.split()) for part in _CLAUSE.split(text or ""))
    return [part for part in parts if part.strip("-*• ")]


def term_of(point):
    """The term a key point names before its colon, or the whole point."""
    match = _TERM.match(point)
    return match.group("term").strip() if match else point


def _is_chinese(text):
    return _HAN.search(text) is not None


def _overlap(clause, text):
    """Share of the clause's character bigrams found in ``text`` (0-1)."""
    pairs = _bigrams(clause)
    return len(pairs & _bigrams(text)) / len(pairs) if pairs else 0.0


def _bigrams(text):
    chars = [c for c in text.lower() if c.isalnum()]
    return {a + b for a, b in zip(chars, chars[1:])}


def _names(lowered_answer, term):
    """Whether the answer contains the point's term word for word."""
    term = term.lower()
    if _is_chinese(term):
        return term in lowered_answer
    return (
        re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", lowered_answer)
        is not None
    )
