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
"""

import re

THRESHOLD = 0.5  # measured on MiniLM: named or paraphrased points score 0.55-1.0,
# unrelated points of the same answer 0.1-0.45

_CLAUSE = re.compile(r"[.;,!?\n。；，、！？：:]+|\s+(?:and|or|also|then|plus)\s+|和|以及|并且|或者")
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
        return [{"point": p, "term": t, "score": 0.0, "covered": False}
                for p, t in zip(points, terms)]
    vectors = embed(clauses + points + terms)
    answer_vectors = vectors[: len(clauses)]
    point_vectors = vectors[len(clauses): len(clauses) + len(points)]
    term_vectors = vectors[len(clauses) + len(points):]
    whole = (answer_vectors @ point_vectors.T).max(axis=0)
    named = (answer_vectors @ term_vectors.T).max(axis=0)
    lowered = answer.lower()
    feedback = []
    for index, (point, term) in enumerate(zip(points, terms)):
        score = max(float(whole[index]), float(named[index]))
        if _names(lowered, term):
            score = 1.0
        score = min(1.0, max(0.0, score))
        feedback.append({"point": point, "term": term, "score": round(score, 3),
                         "covered": score >= threshold})
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
    best = {}
    for owner, score in zip(owners, similarity):
        best[owner] = max(best.get(owner, -1.0), float(score))
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


def _names(lowered_answer, term):
    """Whether the answer contains the point's term word for word."""
    term = term.lower()
    if re.search(r"[\u4e00-\u9fff]", term):
        return term in lowered_answer
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", lowered_answer) is not None
