"""A small synthetic world, and the offline task suite and LM corpus generated from it.

Everything here is plain Python, deterministic given the seed, and needs no downloads. The world is
a few dozen people, each with a home town, a job, a pet, a favourite colour and a favourite food.
Every task of the offline suite states or asks about those same facts, so held-out clusters share
both the instruction vocabulary and the underlying world with the training clusters, and the plain
text corpus (:func:`corpus`) can teach the facts in a short LM pretraining stage.

Tasks (cluster: dataset — kind):

* nli: ``world_nli`` (3-way), ``world_entailment`` (yes/no)
* sentiment: ``world_reviews``, ``world_posts`` (negative/positive)
* closed_book_qa: ``world_qa`` (generative), ``world_qa_choice`` (4 choices)
* reading_comprehension: ``world_passage_qa`` (generative), ``world_passage_choice`` (4 choices),
  ``world_passage_yesno`` (yes/no), all about visitors with random facts (read, not recalled)
* struct_to_text: ``world_data_to_text``, ``world_triples_to_text`` (generative)
* paraphrase: ``world_paraphrase`` (one fact each), ``world_same_facts`` (two facts each) — yes/no:
  do the two sentences say the same thing (FLAN's paraphrase cluster, MRPC/QQP-like)
"""

from __future__ import annotations

import dataclasses
import functools
import random

SEED = 20211
SPLIT_SIZES = {"train": 1500, "validation": 200, "test": 200}

NAMES = (
    "Ada", "Bram", "Cora", "Dov", "Elin", "Finn", "Gita", "Hugo", "Iris", "Jon", "Kira", "Lev",
    "Mira", "Nils", "Omar", "Pia", "Quin", "Rosa", "Sami", "Tove", "Uma", "Vik", "Wren", "Yara",
    "Zeno", "Alba", "Bo", "Cyra", "Dag", "Eda", "Femi", "Gus", "Hana", "Ivo", "Jade", "Kai",
    "Lina", "Milo", "Noor", "Otto",
)
VALUES = {
    "town": ("Oakton", "Riverby", "Stonefield", "Millbrook", "Ashford", "Pinecrest", "Lakeside",
             "Fernwood"),
    "job": ("baker", "farmer", "teacher", "doctor", "painter", "sailor", "builder", "singer"),
    "pet": ("dog", "cat", "horse", "goat", "parrot", "rabbit", "turtle", "duck"),
    "color": ("red", "blue", "green", "yellow", "purple", "orange", "black", "white"),
    "food": ("apples", "bread", "cheese", "soup", "rice", "fish", "pears", "honey"),
}
ATTRS = tuple(VALUES)
# Two phrasings of every fact, so paraphrase is part of the world.
FACT_PHRASES = {
    "town": ("{n} lives in {v}.", "{n}'s home is in {v}."),
    "job": ("{n} is a {v}.", "{n} works as a {v}."),
    "pet": ("{n} has a {v}.", "{n} owns a {v}."),
    "color": ("{n} likes the color {v}.", "{n}'s favorite color is {v}."),
    "food": ("{n} likes to eat {v}.", "{n}'s favorite food is {v}."),
}
QUESTIONS = {
    "town": "Where does {n} live?",
    "job": "What is {n}'s job?",
    "pet": "What pet does {n} have?",
    "color": "What is {n}'s favorite color?",
    "food": "What does {n} like to eat?",
}
YES_NO_QUESTIONS = {
    "town": "Does {n} live in {v}?",
    "job": "Is {n} a {v}?",
    "pet": "Does {n} have a {v}?",
    "color": "Is {n}'s favorite color {v}?",
    "food": "Does {n} like to eat {v}?",
}
# Clauses for joining two facts into one sentence (struct-to-text targets).
CLAUSES = {
    "town": "lives in {v}",
    "job": "works as a {v}",
    "pet": "has a {v}",
    "color": "likes the color {v}",
    "food": "likes to eat {v}",
}
POSITIVE = ("delicious", "wonderful", "lovely", "great", "excellent", "friendly", "cozy", "fresh")
NEGATIVE = ("awful", "terrible", "cold", "stale", "rude", "dirty", "boring", "bland")
PLACES = ("market", "cafe", "bakery", "harbor", "school", "park", "inn", "farm")

NLI_OPTIONS = ("yes", "it is not possible to tell", "no")
YES_NO = ("yes", "no")
SENTIMENT = ("negative", "positive")


@dataclasses.dataclass(frozen=True)
class Person:
  name: str
  facts: dict[str, str]

  def fact(self, attr: str, phrasing: int = 0, value: str | None = None) -> str:
    return FACT_PHRASES[attr][phrasing].format(n=self.name, v=value or self.facts[attr])


@functools.cache
def people(seed: int = SEED) -> tuple[Person, ...]:
  """The world's inhabitants; the same for a given seed."""
  rng = random.Random(seed)
  return tuple(Person(n, {a: rng.choice(VALUES[a]) for a in ATTRS}) for n in NAMES)


def _split_people(split: str, seed: int) -> tuple[Person, ...]:
  """Closed-book QA asks about different people in train and in validation/test."""
  everyone = people(seed)
  cut = len(everyone) * 3 // 4
  return everyone[:cut] if split == "train" else everyone[cut:]


def _other(rng: random.Random, attr: str, value: str) -> str:
  return rng.choice([v for v in VALUES[attr] if v != value])


# ----------------------------------------------------------------------------- example makers
# Each maker returns one example dict of template fields (strings) plus "answer" (and "options"
# for per-example choices).


def _nli(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p = rng.choice(pool)
  shown = rng.sample(ATTRS, 3)
  premise = " ".join(p.fact(a, rng.randrange(2)) for a in shown)
  label = rng.randrange(3)
  if label == 0:  # entailed: a shown fact, maybe in the other phrasing
    attr = rng.choice(shown)
    hypothesis = p.fact(attr, rng.randrange(2))
  elif label == 2:  # contradicted: a shown attribute with another value
    attr = rng.choice(shown)
    hypothesis = p.fact(attr, rng.randrange(2), _other(rng, attr, p.facts[attr]))
  else:  # not stated
    attr = rng.choice([a for a in ATTRS if a not in shown])
    hypothesis = p.fact(attr, rng.randrange(2), rng.choice(VALUES[attr]))
  return {"premise": premise, "hypothesis": hypothesis, "answer": NLI_OPTIONS[label]}


def _entailment(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p = rng.choice(pool)
  a, b = rng.sample(ATTRS, 2)
  premise = f"{p.fact(a, 0)[:-1]}, and {CLAUSES[b].format(v=p.facts[b])}."
  attr = rng.choice((a, b))
  entailed = rng.random() < 0.5
  value = p.facts[attr] if entailed else _other(rng, attr, p.facts[attr])
  return {"premise": premise, "hypothesis": p.fact(attr, 1, value),
          "answer": YES_NO[0 if entailed else 1]}


def _review(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p = rng.choice(pool)
  positive = rng.random() < 0.5
  adjectives = rng.sample(POSITIVE if positive else NEGATIVE, 2)
  food = rng.choice(VALUES["food"])
  place = rng.choice(PLACES)
  text = (f"{p.name} had {food} at the {place} in {p.facts['town']}. "
          f"The food was {adjectives[0]} and the staff were {adjectives[1]}.")
  return {"text": text, "answer": SENTIMENT[int(positive)]}


def _post(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p = rng.choice(pool)
  positive = rng.random() < 0.5
  feeling = rng.choice(("I loved", "I really enjoyed", "So happy with") if positive else
                       ("I hated", "I was upset by", "So tired of"))
  adjective = rng.choice(POSITIVE if positive else NEGATIVE)
  text = f"{feeling} the {adjective} {rng.choice(PLACES)} in {rng.choice(VALUES['town'])} today!"
  return {"text": text, "answer": SENTIMENT[int(positive)], "name": p.name}


def _ask(rng: random.Random, pool: tuple[Person, ...]) -> tuple[Person, str]:
  return rng.choice(pool), rng.choice(ATTRS)


def _qa(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p, attr = _ask(rng, pool)
  return {"question": QUESTIONS[attr].format(n=p.name), "answer": p.facts[attr]}


def _qa_choice(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p, attr = _ask(rng, pool)
  answer = p.facts[attr]
  options = rng.sample([v for v in VALUES[attr] if v != answer], 3) + [answer]
  rng.shuffle(options)
  return {"question": QUESTIONS[attr].format(n=p.name), "answer": answer, "options": options}


# Reading comprehension is about visitors, not the world's people: each passage gives a visitor
# random facts, so its questions can only be answered by reading the passage (measured: passages
# of the world's own people were answered from memory, and the tuned model never learned to read).
VISITORS = (
    "Abe", "Bea", "Cal", "Dee", "Eli", "Fay", "Gil", "Hal", "Ike", "Joy", "Ken", "Liv", "Max",
    "Ned", "Oli", "Pat", "Ray", "Sue", "Ted", "Val", "Wes", "Xia", "Yul", "Zoe",
)
PASSAGE_FACTS = 3


def _passage(rng: random.Random, pool: tuple[Person, ...]) -> tuple[str, Person, list[str]]:
  """A visitor's passage: PASSAGE_FACTS random facts; returns the attributes it states."""
  del pool
  a = Person(rng.choice(VISITORS), {attr: rng.choice(VALUES[attr]) for attr in ATTRS})
  shown = rng.sample(ATTRS, PASSAGE_FACTS)
  return " ".join(a.fact(attr, rng.randrange(2)) for attr in shown), a, shown


def _passage_qa(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  passage, a, shown = _passage(rng, pool)
  attr = rng.choice(shown)
  return {"passage": passage, "question": QUESTIONS[attr].format(n=a.name),
          "answer": a.facts[attr]}


def _passage_choice(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  passage, a, shown = _passage(rng, pool)
  attr = rng.choice(shown)
  answer = a.facts[attr]
  options = rng.sample([v for v in VALUES[attr] if v != answer], 3) + [answer]
  rng.shuffle(options)
  return {"passage": passage, "question": QUESTIONS[attr].format(n=a.name), "answer": answer,
          "options": options}


def _passage_yesno(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  passage, a, shown = _passage(rng, pool)
  attr = rng.choice(shown)
  yes = rng.random() < 0.5
  value = a.facts[attr] if yes else _other(rng, attr, a.facts[attr])
  return {"passage": passage, "question": YES_NO_QUESTIONS[attr].format(n=a.name, v=value),
          "answer": YES_NO[0 if yes else 1]}


def _paraphrase(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  """Two phrasings of one fact (yes), or of a fact with another value or attribute (no)."""
  p = rng.choice(pool)
  attr, k = rng.choice(ATTRS), rng.randrange(2)
  same, kind = rng.random() < 0.5, rng.randrange(4)
  if same:
    second = p.fact(attr, 1 - k)
  elif kind < 3:  # the same attribute with another value
    second = p.fact(attr, 1 - k, _other(rng, attr, p.facts[attr]))
  else:  # another attribute of the same person
    second = p.fact(rng.choice([a for a in ATTRS if a != attr]), rng.randrange(2))
  return {"sentence1": p.fact(attr, k), "sentence2": second, "answer": YES_NO[0 if same else 1]}


def _same_facts(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  """Two facts in one sentence and the same two, reordered and rephrased (yes), or with one value
  changed (no)."""
  p = rng.choice(pool)
  a, b = rng.sample(ATTRS, 2)
  same = rng.random() < 0.5
  values = dict(p.facts)
  if not same:
    changed = rng.choice((a, b))
    values[changed] = _other(rng, changed, p.facts[changed])
  first = f"{p.name} {CLAUSES[a].format(v=p.facts[a])} and {CLAUSES[b].format(v=p.facts[b])}."
  second = " ".join(p.fact(x, 1, values[x]) for x in (b, a))
  return {"sentence1": first, "sentence2": second, "answer": YES_NO[0 if same else 1]}


def _describe(p: Person, attrs: list[str]) -> str:
  clauses = [CLAUSES[a].format(v=p.facts[a]) for a in attrs]
  if len(clauses) == 1:
    return f"{p.name} {clauses[0]}."
  return f"{p.name} {', '.join(clauses[:-1])} and {clauses[-1]}."


def _data_to_text(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p = rng.choice(pool)
  chosen = set(rng.sample(ATTRS, rng.randint(2, 3)))
  attrs = [a for a in ATTRS if a in chosen]
  data = ", ".join([f"name[{p.name}]"] + [f"{a}[{p.facts[a]}]" for a in attrs])
  return {"data": data, "answer": _describe(p, attrs)}


def _triples_to_text(rng: random.Random, pool: tuple[Person, ...]) -> dict:
  p = rng.choice(pool)
  chosen = set(rng.sample(ATTRS, 2))
  attrs = [a for a in ATTRS if a in chosen]
  triples = "\n".join(f"{p.name} | {a} | {p.facts[a]}" for a in attrs)
  return {"triples": triples, "answer": _describe(p, attrs)}


@dataclasses.dataclass(frozen=True)
class WorldTask:
  name: str
  cluster: str
  make: object  # (rng, pool) -> dict
  fields: tuple[str, ...]
  options: tuple[str, ...] | None = None
  per_example_options: bool = False
  split_people: bool = False  # use disjoint people for train vs validation/test


TASKS: tuple[WorldTask, ...] = (
    WorldTask("world_nli", "nli", _nli, ("premise", "hypothesis", "answer"), NLI_OPTIONS),
    WorldTask("world_entailment", "nli", _entailment, ("premise", "hypothesis", "answer"), YES_NO),
    WorldTask("world_reviews", "sentiment", _review, ("text", "answer"), SENTIMENT),
    WorldTask("world_posts", "sentiment", _post, ("text", "answer", "name"), SENTIMENT),
    WorldTask("world_qa", "closed_book_qa", _qa, ("question", "answer"), split_people=True),
    WorldTask("world_qa_choice", "closed_book_qa", _qa_choice, ("question", "answer"),
              per_example_options=True, split_people=True),
    WorldTask("world_passage_qa", "reading_comprehension", _passage_qa,
              ("passage", "question", "answer")),
    WorldTask("world_passage_choice", "reading_comprehension", _passage_choice,
              ("passage", "question", "answer"), per_example_options=True),
    WorldTask("world_passage_yesno", "reading_comprehension", _passage_yesno,
              ("passage", "question", "answer"), YES_NO),
    WorldTask("world_data_to_text", "struct_to_text", _data_to_text, ("data", "answer")),
    WorldTask("world_triples_to_text", "struct_to_text", _triples_to_text, ("triples", "answer")),
    WorldTask("world_paraphrase", "paraphrase", _paraphrase, ("sentence1", "sentence2", "answer"),
              YES_NO),
    WorldTask("world_same_facts", "paraphrase", _same_facts, ("sentence1", "sentence2", "answer"),
              YES_NO),
)
TASKS_BY_NAME = {t.name: t for t in TASKS}


@functools.cache
def examples(task: str, split: str, seed: int = SEED) -> tuple[dict, ...]:
  """The examples of one offline task split; identical for identical arguments."""
  spec = TASKS_BY_NAME[task]
  split_index = ("train", "validation", "test").index(split)
  rng = random.Random(f"{seed}/{task}/{split_index}")
  pool = _split_people(split, seed) if spec.split_people else people(seed)
  return tuple(spec.make(rng, pool) for _ in range(SPLIT_SIZES[split]))


def corpus(seed: int = SEED, documents_per_person: int = 12) -> list[str]:
  """Plain-text documents about the world, for a short LM pretraining stage."""
  rng = random.Random(f"{seed}/corpus")
  docs = []
  for p in people(seed):
    for _ in range(documents_per_person):
      attrs = list(ATTRS)
      rng.shuffle(attrs)
      docs.append(" ".join(p.fact(a, rng.randrange(2)) for a in attrs))
  for task in ("world_reviews", "world_posts"):
    docs.extend(ex["text"] for ex in examples(task, "train", seed)[:200])
  rng.shuffle(docs)
  return docs
