"""Flan 2022: prompt modes, randomized options, few-shot budget, sources from the project's
fixtures (NIv2 JSON, CoT TSV, T0-SF rows + promptsource's real YAML), mixing and sharded export."""

import collections
import functools
import json
import os
import re

import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from flan_jax import export_data
from flan_jax.data import local_sources as sources
from flan_jax.data import prompt_modes as pm
from flan_jax.data import registry
from flan_jax.data.spec import MissingDataError
from flan_jax.data.vocab import DEFAULT_VOCABULARY
from flan_jax.mixtures import flan2022 as mix
from flan_jax.tasks.flan2022 import registry as f22
from flan_jax.tasks.flan2022 import sizes
from tests.helpers import no_network

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "flan2022")
LENGTHS = {"inputs": 2048, "targets": 512}
T0_FIXTURES = sorted(d for d in sizes.T0 if os.path.exists(os.path.join(FIXTURES, "t0", d)))
NIV2_FIXTURES = sorted(f[:-5] for f in os.listdir(os.path.join(FIXTURES, "niv2", "tasks")))


def _mock_kwargs(request) -> dict:
  """Realistic mock rows where random ones would be filtered out (as tests/test_flan_tasks)."""
  from tests.test_flan_tasks import REALISTIC
  params = getattr(request.node, "callspec", None)
  name = params.params.get("name") if params else None
  if not name or not name.startswith("flan2022_flan2021_"):
    return {}
  mode = next(m for m in pm.MODES if name.endswith("_" + m))
  task = f22.TASKS[name[len(f22.PREFIX):-len(mode) - 1]]
  tfds_name = task.data_source.tfds_dataset.name
  fns = [fn for prefix, fn in REALISTIC.items() if tfds_name.startswith(prefix)]
  return {"as_dataset_fn": fns[0]} if fns else {}


@pytest.fixture(autouse=True)
def fixture_dirs(request, monkeypatch):
  for var in ("FLAN_P3_DIR", "FLAN_T0_ROUTE"):
    monkeypatch.delenv(var, raising=False)
  for source in ("niv2", "cot", "t0"):
    sources.set_data_dir(source, os.path.join(FIXTURES, source))
  with tfds.testing.mock_data(num_examples=6, num_sub_examples=4, max_value=3,
                              **_mock_kwargs(request)):
    yield
  for source in ("niv2", "cot", "t0", "p3"):
    sources.set_data_dir(source, None)


def _examples(name: str, n: int = 4, seed: int | None = 0) -> list[dict]:
  ds = seqio.get_mixture_or_task(name).get_dataset(LENGTHS, split="train", shuffle=False,
                                                   seed=seed, num_epochs=1)
  return list(ds.take(n).as_numpy_iterator())


def _text(ex: dict, key: str) -> str:
  return ex[f"{key}_pretokenized"].decode()


# ----------------------------------------------------------------------------- option formats


def _blocks(seed: int) -> list[str]:
  options = tf.constant(["red", "green", "blue"])
  return [pm.option_block(options, tf.constant(f"{seed}:{i}")).numpy().decode() for i in range(40)]


def test_option_formats_vary_and_are_reproducible():
  blocks = _blocks(0)
  assert blocks == _blocks(0)
  assert blocks != _blocks(1)
  assert len(set(blocks)) > 10
  for block in blocks:
    lines = block.split("\n")
    items = [line for line in lines if line.endswith(("red", "green", "blue"))]
    assert [i[-len(w):] for i, w in zip(items, ("red", "green", "blue"), strict=True)] == [
        "red", "green", "blue"]
    markers = [i[: -len(w)] for i, w in zip(items, ("red", "green", "blue"), strict=True)]
    assert any(markers[0] == style(0) for style in pm.ITEM_STYLES)
    style = next(s for s in pm.ITEM_STYLES if s(0) == markers[0] and s(1) == markers[1])
    assert markers == [style(i) for i in range(3)]
    header = lines[0] if lines[0] not in items else ""
    assert header in pm.OPTION_HEADERS


def test_modes_render_options_only_with_opt():
  opt = _examples("flan2022_t0_rotten_tomatoes_zs_opt", n=8, seed=3)
  noopt = _examples("flan2022_t0_rotten_tomatoes_zs_noopt", n=8, seed=3)
  assert _examples("flan2022_t0_rotten_tomatoes_zs_opt", n=8, seed=3)[0]["inputs"].tolist() == \
      opt[0]["inputs"].tolist()
  for a, b in zip(opt, noopt, strict=True):
    assert a["_template_idx"] == b["_template_idx"]  # same draw, options shown or not
    options = [o.decode() for o in a["options"]]
    if options:
      assert _text(a, "inputs").startswith(_text(b, "inputs"))
      assert all(o in _text(a, "inputs")[len(_text(b, "inputs")):] for o in options)
    else:
      assert _text(a, "inputs") == _text(b, "inputs")
  assert any(len(a["options"]) for a in opt)
  other_seed = _examples("flan2022_t0_rotten_tomatoes_zs_opt", n=8, seed=4)
  assert [_text(e, "inputs") for e in other_seed] != [_text(e, "inputs") for e in opt]


# ----------------------------------------------------------------------------- dialog formats


def _dialogs(seed: int) -> list[str]:
  turns = tf.constant([pm.USER_TURN + "hi", pm.AGENT_TURN + "hello", pm.USER_TURN + "bye"])
  text = tf.strings.reduce_join(turns, separator=pm.TURN_SEP) + "\nReply as " + pm.AGENT_NAME
  return [pm.dialog_format(text, tf.constant(f"{seed}:{i}")).numpy().decode() for i in range(40)]


def test_dialog_formats_vary_and_are_reproducible():
  dialogs = _dialogs(0)
  assert dialogs == _dialogs(0) and dialogs != _dialogs(1)
  assert len(set(dialogs)) > 10
  styles = {(u, a, p, sep) for u, a in pm.DIALOG_SPEAKERS for p, sep in pm.DIALOG_TURN_STYLES}
  for text in dialogs:
    assert not any(m in text for m in pm.DIALOG_MARKERS)
    # Exactly one (speakers, style) draw explains the whole text, the template's mention included.
    fits = [(u, a) for u, a, p, sep in styles
            if text == sep.join([p.format(u) + "hi", p.format(a) + "hello", p.format(u) + "bye"])
            + f"\nReply as {a}"]
    assert len(fits) >= 1, text
  assert pm.dialog_format(tf.constant("no markers here"), tf.constant("k")).numpy() == \
      b"no markers here"


def test_dialog_task_formats_vary_across_examples_and_repeat_for_a_seed():
  def speakers(seed: int) -> list[tuple[str, ...]]:
    out = []
    for ex in _examples("flan2022_dialog_wiki_dialog_zs_opt", n=6, seed=seed):
      text = _text(ex, "inputs")
      assert not any(m in text for m in pm.DIALOG_MARKERS), text
      out.append(tuple(pair for pair in pm.DIALOG_SPEAKERS
                       if pair[0] in text and pair[1] in text))
    return out

  first = speakers(0)
  assert first == speakers(0)
  assert len(set(first)) > 1  # the speaker labels differ across examples
  assert first != speakers(1)


def _qrecc_tfds_rows(self, split, decoders=None, read_config=None, **kwargs):
  """TFDS q_re_cc's rows for the release's JSON file in the fixtures, made by the TFDS builder's
  own example generator and its features' encoding."""
  import pathlib

  from tensorflow_datasets.text.qrecc import qrecc

  # A plain path: mock_data redirects TFDS's own file system (epath) to an empty directory.
  path = pathlib.Path(FIXTURES) / "qrecc" / f"qrecc_{split}.json"
  features = self.info.features
  spec = features.get_tensor_spec()
  rows = [tf.data.Dataset.from_tensors({k: tf.constant(v, spec[k].dtype) for k, v in
                                        features.encode_example(ex).items()})
          for _, ex in qrecc.QReCC._generate_examples(None, path)]
  return functools.reduce(tf.data.Dataset.concatenate, rows)


def test_qrecc_from_its_tfds_rows():
  """QReCC through TFDS ``q_re_cc`` (the reference's source): rows as TFDS's builder makes them
  from the release's JSON (tests/fixtures/flan2022/qrecc, the release's layout)."""
  assert f22.TASKS["dialog_qrecc"].data_source.tfds_dataset.name == "q_re_cc:1.0.0"
  with open(os.path.join(FIXTURES, "qrecc", "qrecc_train.json")) as f:
    turns = [t for t in json.load(f) if t["Answer"]]  # the empty answer is skipped
  with tfds.testing.mock_data(as_dataset_fn=_qrecc_tfds_rows):
    exs = _examples("flan2022_dialog_qrecc_zs_opt", n=10, seed=0)
    inv = _examples("flan2022_dialog_qrecc_ii_zs_opt", n=10, seed=0)
  assert [_text(e, "targets") for e in exs] == [t["Answer"] for t in turns]
  assert [_text(e, "targets") for e in inv] == [t["Question"] for t in turns]
  for ex, inverse, turn in zip(exs, inv, turns, strict=True):
    text = _text(ex, "inputs")
    assert not any(m in text for m in pm.DIALOG_MARKERS)
    # Every earlier turn, then the question, in order, each behind one drawn speaker label.
    said = [*turn["Context"], turn["Question"]]
    positions = [text.index(s) for s in said if s]
    assert positions == sorted(positions)
    assert any(p.format(user) + turn["Question"] in text for user, _ in pm.DIALOG_SPEAKERS
               for p, _ in pm.DIALOG_TURN_STYLES)
    assert turn["Question"] not in _text(inverse, "inputs")
    assert turn["Answer"] in _text(inverse, "inputs")
  assert f22.TASKS["dialog_qrecc_ii"].rate() == pytest.approx(63_501 * f22.INVERSION_RATE)


# ----------------------------------------------------------------------------- few-shot


def _candidates_ds(n: int, words: int) -> tf.data.Dataset:
  rows = {pm.CAND_INPUTS: [[f"query {i} " + "word " * words] for i in range(n)],
          pm.CAND_TARGETS: [[f"answer {i}"] for i in range(n)],
          pm.CAND_OPTIONS: [[""] for _ in range(n)], pm.UID: [f"row{i}" for i in range(n)]}
  return tf.data.Dataset.from_tensor_slices(rows)


@pytest.mark.parametrize("budget", [60, 200, pm.FEW_SHOT_MAX_LEN])
def test_few_shot_budget_and_never_the_query(budget):
  step = pm.render_mode("fs_noopt", "toy", "Toy", pool_fn=lambda: _candidates_ds(12, 20),
                        vocabulary=DEFAULT_VOCABULARY, max_len=budget)
  with seqio.utils.map_seed_manager(7):
    rows = list(step(_candidates_ds(12, 20)).as_numpy_iterator())
  shots = [int(r["num_shots"]) for r in rows]
  for i, row in enumerate(rows):
    text = row["inputs"].decode()
    query = f"query {i} " + "word " * 20
    assert text.endswith(query) and text.count(f"query {i} ") == 1
    assert text.count("answer ") == row["num_shots"]
    if row["num_shots"]:
      assert len(DEFAULT_VOCABULARY.encode(text)) <= budget
  if budget == 60:
    assert max(shots) <= 1
  if budget == pm.FEW_SHOT_MAX_LEN:
    assert max(shots) > 1


def test_few_shot_budget_binds_on_real_length():
  """Long exemplars: the 1,920-token budget keeps fewer of them."""
  step = pm.render_mode("fs_noopt", "toy", "Toy", pool_fn=lambda: _candidates_ds(12, 250),
                        vocabulary=DEFAULT_VOCABULARY)
  with seqio.utils.map_seed_manager(7):
    rows = list(step(_candidates_ds(12, 250)).as_numpy_iterator())
  assert all(len(DEFAULT_VOCABULARY.encode(r["inputs"].decode())) <= pm.FEW_SHOT_MAX_LEN
             for r in rows)
  # Each block is ~750 tokens: two exemplars and the query exceed 1,920.
  assert max(int(r["num_shots"]) for r in rows) <= 1


@pytest.mark.parametrize("vocab", ["byte", "sentencepiece"])
def test_few_shot_budget_under_each_vocabulary(vocab):
  """The budget counts the configured vocabulary's tokens: bytes for ByteVocabulary, whose
  encode_tf takes scalars only (a batched call failed while tracing)."""
  from flan_jax.data import vocab as vocab_lib
  chosen = seqio.ByteVocabulary() if vocab == "byte" else vocab_lib.vocabulary()
  vocab_lib.set_default_vocabulary(chosen)
  try:
    step = pm.render_mode("fs_noopt", "toy", "Toy", pool_fn=lambda: _candidates_ds(12, 20),
                          vocabulary=DEFAULT_VOCABULARY, max_len=300)
    with seqio.utils.map_seed_manager(7):
      rows = list(step(_candidates_ds(12, 20)).as_numpy_iterator())
  finally:
    vocab_lib.set_default_vocabulary(None)
  lengths = [len(chosen.encode(r["inputs"].decode())) for r in rows if r["num_shots"]]
  assert lengths and max(lengths) <= 300
  # Bytes are ~4x the pieces: the same budget keeps fewer exemplars under bytes.
  assert (max(int(r["num_shots"]) for r in rows) <= 2) == (vocab == "byte")


def test_niv2_exemplars_come_from_the_same_task():
  path = os.path.join(FIXTURES, "niv2", "tasks", "task1289_trec_classification.json")
  with open(path) as f:
    data = json.load(f)
  own = {i["input"] for i in data["Instances"]}
  positive = data["Positive Examples"][0]["input"]
  for ex in _examples("flan2022_niv2_task1289_trec_classification_fs_opt", n=8):
    questions = [line.removeprefix("Input: ") for line in _text(ex, "inputs").split("\n")
                 if line.endswith("?")]
    instances = [q for q in questions if q != positive]
    assert set(instances) <= own
    assert len(instances) == int(ex["num_shots"]) + 1


# ----------------------------------------------------------------------------- sources


def _names(source: str) -> list[str]:
  """Task names of a source (NIv2: the tasks with a fixture file)."""
  return [t.task_name(m) for t in f22.TASKS.values() if t.source == source for m in t.modes
          if source != "niv2" or t.name[len("niv2_"):] in NIV2_FIXTURES]


def _well_formed(name: str) -> None:
  exs = _examples(name, n=2)
  assert exs, name
  task = f22.TASKS[exs[0]["_task_name"].decode()]
  for ex in exs:
    assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1 and len(ex["targets"]) > 1
    assert ex["_template_type"].decode() in task.modes
    assert ex["_task_source"].decode() == f22.SOURCES[task.source][0]
    assert task.task_name(ex["_template_type"].decode()) == name


FAST = ([n for n in _names("cot") if "gsm8k" in n] + _names("niv2")[:2]
        + ["flan2022_flan2021_lambada_fs_opt", "flan2022_flan2021_unified_qa_science_inst_fs_opt"]
        + ["flan2022_dialog_wiki_dialog_fs_opt", "flan2022_dialog_wiki_dialog_ii_zs_opt",
           "flan2022_dialog_qrecc_fs_opt"]
        + [f"flan2022_t0_rotten_tomatoes_{m}" for m in pm.MODES]
        + [n for n in _names("flan2021") if "flan2021_rte_" in n])


@pytest.mark.parametrize("name", FAST)
def test_tasks_yield_tokenized_examples(name):
  with no_network():
    _well_formed(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(
    _names("cot") + _names("niv2") + _names("flan2021") + _names("dialog")
    + _names("t0")) - set(FAST)))
def test_every_task_yields_tokenized_examples(name):
  with no_network():
    _well_formed(name)


def test_t0_matches_promptsource_itself():
  """Our jinja2 rendering of promptsource's YAML equals promptsource's own Template.apply."""
  from promptsource import templates  # installed by `make install` (see setup.py)
  compared = skipped = 0
  for dataset in T0_FIXTURES:
    ours = sources.promptsource_templates(dataset)
    theirs = list(templates.DatasetTemplates(dataset).templates.values())
    assert [t["name"] for t in ours] == [t.name for t in theirs]
    with open(os.path.join(FIXTURES, "t0", dataset, "train.jsonl")) as f:
      rows = [json.loads(line) for line in f]
    for row in rows[:3]:
      for mine, ref in zip(ours, theirs, strict=True):
        got = sources.render_promptsource(mine, row)
        want = ref.apply(row)
        if got is None:
          assert len(want) < 2 or not want[1]
          continue
        if re.search(r"\|\s*choice\b", mine["jinja"]):  # random draws: ours seeded, theirs not
          skipped += 1
          continue
        compared += 1
        assert list(got[:2]) == want[:2]
        assert got[2] == (ref.get_answer_choices_list(row) or [])
  assert compared > 2 * skipped > 0


P3 = os.path.join(FIXTURES, "p3")


def _p3_rows(folder: str) -> list[dict]:
  """The fixture's P3 records, read with TF's own Example parser (the external truth)."""
  out = []
  for path in sorted(tf.io.gfile.glob(os.path.join(P3, "data", folder, "train.tfrecord-*"))):
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
      ex = tf.train.Example.FromString(record).features.feature
      out.append({"inputs": ex["inputs_pretokenized"].bytes_list.value[0].decode(),
                  "targets": ex["targets_pretokenized"].bytes_list.value[0].decode(),
                  "choices": [c.decode() for c in ex["answer_choices"].bytes_list.value]})
  return out


def test_t0_p3_route_reads_the_pre_rendered_release():
  sources.set_data_dir("p3", P3)
  assert sources.t0_route() == "p3"
  listed, plain = (sources.p3_folder("rotten_tomatoes", name) for name in (
      "Reviewer Opinion bad good choices", "Movie Expressed Sentiment"))
  rows = {folder: _p3_rows(folder) for folder in (listed, plain)}
  want = {(r["inputs"], r["targets"].strip()) for rs in rows.values() for r in rs}
  with no_network():
    noopt = _examples("flan2022_t0_rotten_tomatoes_zs_noopt", n=100)
    opt = _examples("flan2022_t0_rotten_tomatoes_zs_opt", n=100)
  # Every row of both prompt folders once (the _score_eval copy is not read), targets unpadded.
  got = [(_text(e, "inputs"), _text(e, "targets")) for e in noopt]
  assert sorted(got) == sorted(want) and len(got) == 8
  for ex in opt:
    text = _text(ex, "inputs")
    row = next(r for f, rs in rows.items() for r in rs if text.startswith(r["inputs"])
               and (f == plain or text == r["inputs"]))
    if text == row["inputs"]:  # the prompt already lists its choices: no second block
      assert all(c in row["inputs"] for c in row["choices"])
    else:
      assert [o.decode() for o in ex["options"]] == row["choices"] == ["negative", "positive"]
      assert all(c in text[len(row["inputs"]):] for c in row["choices"])
  # A prompt without answer_choices (wiki_qa's generative Jeopardy prompt).
  jeopardy = _p3_rows(sources.p3_folder("wiki_qa", "Jeopardy style"))
  got = _examples("flan2022_t0_wiki_qa_zs_opt", n=100)
  assert sorted(_text(e, "targets") for e in got) == sorted(r["targets"].strip() for r in jeopardy)
  assert all(len(e["options"]) == 0 for e in got)


def test_t0_route_switch_and_p3_missing_data(tmp_path, monkeypatch):
  import gin
  sources.set_data_dir("p3", P3)
  with gin.unlock_config():
    gin.bind_parameter("flan_jax.data.local_sources.t0_route.route", "promptsource")
  try:
    assert sources.t0_route() == "promptsource"
    # The jsonl rows (4), each with every promptsource template; P3's two folders give 8 rows.
    assert len(_examples("flan2022_t0_rotten_tomatoes_zs_noopt", n=100)) == 4
  finally:  # unbind without clearing other tests' gin config
    with gin.unlock_config():
      gin.bind_parameter("flan_jax.data.local_sources.t0_route.route", None)
  assert sources.t0_route() == "p3"
  sources.set_data_dir("p3", None)
  monkeypatch.setenv("FLAN_T0_ROUTE", "p3")
  with pytest.raises(MissingDataError, match=r"bigscience/P3.*--data_dir p3=DIR.*FLAN_P3_DIR"):
    _examples("flan2022_t0_rotten_tomatoes_zs_opt")
  sources.set_data_dir("p3", str(tmp_path))
  with pytest.raises(MissingDataError, match=r"rotten_tomatoes_\*/train.tfrecord"):
    _examples("flan2022_t0_rotten_tomatoes_zs_opt")
  monkeypatch.setenv("FLAN_T0_ROUTE", "nope")
  with pytest.raises(ValueError, match="Unknown T0-SF route"):
    sources.t0_route()


def test_every_t0_dataset_has_promptsource_templates():
  for dataset in sizes.T0:
    templates = sources.promptsource_templates(dataset)
    assert templates and all(t["jinja"].count("|||") >= 1 for t in templates)


def test_missing_data_errors_say_what_to_do(tmp_path):
  sources.set_data_dir("niv2", str(tmp_path))
  with pytest.raises(MissingDataError, match=r"natural-instructions.*--data_dir niv2=DIR"):
    _examples("flan2022_niv2_task001_quoref_question_generation_zs_opt")
  sources.set_data_dir("cot", None)
  os.environ.pop("FLAN_COT_DIR", None)
  with pytest.raises(MissingDataError, match=r"FLAN_COT_DIR"):
    _examples("flan2022_cot_gsm8k_zs_opt")


def test_bad_cot_tsv_names_the_line(tmp_path):
  (tmp_path / "gsm8k_train.tsv").write_text("q\ta\tr\nonly two\tcolumns\n")
  sources.set_data_dir("cot", str(tmp_path))
  # Read lazily inside tf.data: the message arrives wrapped in TF's error.
  with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                     match=r"gsm8k_train.tsv:2: expected 3 tab-separated columns"):
    _examples("flan2022_cot_gsm8k_zs_opt")


# ----------------------------------------------------------------------------- mixing + export


def test_source_weights_and_rates():
  submix = seqio.get_mixture_or_task(mix.SUBMIX)
  total = submix.total_rate
  share = collections.Counter()
  for task in submix.tasks:
    share[task.name.split("_")[1]] += submix.get_rate(task) / total
  assert {k: round(v, 6) for k, v in share.items()} == mix.SOURCE_WEIGHTS
  assert mix.SOURCE_WEIGHTS == {"flan2021": 0.40, "t0": 0.32, "niv2": 0.20, "cot": 0.05,
                                "dialog": 0.03}
  for source, (_, cap, modes) in f22.SOURCES.items():
    for mode in modes:
      mixture = seqio.get_mixture_or_task(mix.mode_mixture(source, mode))
      for task in mixture.tasks:
        spec = f22.TASKS[task.name[len(f22.PREFIX):-len(mode) - 1]]
        size = spec.size if spec.size is not None else cap
        expected = min(cap, size) * (f22.INVERSION_RATE if spec.inversion_of else 1)
        assert mixture.get_rate(task) == pytest.approx(expected)
  gsm8k = seqio.get_mixture_or_task("flan2022_cot_zs_opt").get_rate(
      seqio.get_mixture_or_task("flan2022_cot_gsm8k_zs_opt"))
  assert gsm8k == 7_473  # below the CoT cap of 100k
  assert f22.TASKS["t0_amazon_polarity"].rate() == 20_000  # capped


def test_flan2021_v2_additions_render_from_their_tfds_rows():
  """LAMBADA and UnifiedQA's science questions (tests/test_flan_tasks' realistic TFDS rows):
  the exact inputs and targets our templates give them, and the rows cleaning drops."""
  from flan_jax.data import templates as tmpl
  from flan_jax.tasks.flan2022 import flan2021
  from tests.test_flan_tasks import REALISTIC

  def realistic(self, split, decoders=None, read_config=None, **kwargs):
    fn = next(fn for prefix, fn in REALISTIC.items() if self.name.startswith(prefix))
    return fn(self, split, decoders, read_config, **kwargs)

  with tfds.testing.mock_data(as_dataset_fn=realistic):
    lam = _examples("flan2022_flan2021_lambada_zs_noopt", n=10)
    noopt = _examples("flan2022_flan2021_unified_qa_science_inst_zs_noopt", n=10, seed=2)
    opt = _examples("flan2022_flan2021_unified_qa_science_inst_zs_opt", n=10, seed=2)
  assert [_text(e, "targets") for e in lam] == ["rosa", "bone", "sea", "grandpa", "it"]
  for ex in lam:  # "hello" (one word) is dropped
    template = flan2021.LAMBADA_TEMPLATES[int(ex["_template_idx"])]
    context = {"rosa": "she picked up the phone and called her oldest friend ,",
               "bone": "the dog would not stop barking until tom gave it a",
               "sea": "after the storm the whole village came out to look at the",
               "grandpa": "nobody in the house had slept , not even",
               "it": "the last train left at midnight and we were not on"}[_text(ex, "targets")]
    assert _text(ex, "inputs") == tmpl.render_py(template.inputs, {"context": context})

  rows = {"which of these is a source of light?": ("a candle flame", [
      "the moon", "a candle flame", "a mirror", "a window"]),
          "what do plants need to make food?": ("sunlight", ["sunlight", "sand", "salt", "smoke"]),
          "Which unit measures mass?": ("Gram", ["Meter", "Liter", "Gram", "Second"]),
          "what pulls objects toward earth?": ("gravity", [
              "gravity", "friction", "magnetism", "wind"])}
  # Five options and an answer outside the options are dropped; "gram" takes the option's case.
  assert len(noopt) == len(opt) == 4
  for a, b in zip(noopt, opt, strict=True):
    template = flan2021.SCIENCE_TEMPLATES[int(a["_template_idx"])].without_options()
    question = next(q for q in rows if q in _text(a, "inputs"))
    answer, options = rows[question]
    assert _text(a, "inputs") == tmpl.render_py(template.inputs, {"question": question})
    assert _text(a, "targets") == _text(b, "targets") == answer
    assert [o.decode() for o in b["options"]] == options
    block = _text(b, "inputs")[len(_text(a, "inputs")):]
    assert [block.index(o) for o in options] == sorted(block.index(o) for o in options)
  assert f22.TASKS["flan2021_lambada"].size == 4_869
  assert f22.TASKS["flan2021_unified_qa_science_inst"].rate() == 605


def test_flan2021_v2_drops_the_30k_slicing():
  from flan_jax.tasks.flan2022 import flan2021
  split = flan2021.v2_train_split
  assert split("snli", {"train": "train[:30000]", "validation": "validation[:200]"}) == "train"
  # The rows a "[-N:]" validation split reserves stay out of train, as the reference.
  assert split("squad_v1", {"train": "train[:30000]", "validation": "train[-200:]"}) == (
      "train[:-200]")
  assert split("rte", {"train": "train[:-200]", "validation": "train[-200:]"}) == "train[:-200]"
  # One TFDS split sliced into train/validation/test: kept (test = train[-3000:]).
  assert split("true_case", {"train": "train[:30000]", "validation": "train[30000:30200]"}) == (
      "train[:30000]")
  assert f22.TASKS["flan2021_para_crawl_enes"].data_source.split_map["train"] == "train[:30000]"
  mnli = f22.TASKS["flan2021_mnli_matched"] if "flan2021_mnli_matched" in f22.TASKS else None
  snli = f22.TASKS["flan2021_snli"]
  assert snli.data_source.split_map["train"] == "train" and snli.size == 550_152
  assert snli.rate() == 30_000
  del mnli


def _sharded_export(tmp_path, name: str, num_examples: int | None) -> tuple[list, list]:
  whole = tmp_path / "whole.jsonl"
  with no_network():
    export_data.export(name, "train", str(whole), num_examples=num_examples, progress=False)
    parts = []
    for i in range(2):
      out = tmp_path / f"part{i}.jsonl"
      export_data.export(name, "train", str(out), num_examples=num_examples, progress=False,
                         shard=(i, 2))
      parts.append(out.read_text().splitlines())
  return whole.read_text().splitlines(), parts


SMALL_MIX = "test_flan2022_small_mix"
if SMALL_MIX not in seqio.MixtureRegistry.names():
  seqio.MixtureRegistry.add(SMALL_MIX, [
      ("flan2022_cot_gsm8k_fs_opt", 3.0),
      ("flan2022_niv2_task1289_trec_classification_zs_opt", 2.0),
      ("flan2022_t0_rotten_tomatoes_zs_opt", 1.0)])


TFDS_MIX = "test_flan2022_tfds_mix"
if TFDS_MIX not in seqio.MixtureRegistry.names():
  seqio.MixtureRegistry.add(TFDS_MIX, [
      ("flan2022_flan2021_snli_zs_opt", 1.0), ("flan2022_dialog_wiki_dialog_zs_opt", 1.0),
      ("flan2022_cot_gsm8k_zs_opt", 1.0)])


def test_sharded_export_of_tfds_tasks_equals_the_whole(tmp_path):
  """Mocked TFDS data, like unprepared data, has no split files for seqio to list when it shards;
  the parts still make up the whole."""
  lines, parts = _sharded_export(tmp_path, TFDS_MIX, 30)
  assert len(lines) == 30 and collections.Counter(lines) == collections.Counter(parts[0] + parts[1])
  assert parts[0] and parts[1]
  assert {json.loads(line)["_task_source"] for line in lines} == {"Flan2021", "Dialog", "CoT"}


def test_every_task_knows_its_train_size_for_a_sharded_export():
  """``--shard`` splits each task's lines by its train size: TFDS tasks take it from the static
  table (their data is not prepared here), local sources count their files (NIv2: the fixtures')."""
  unknown = [t.name for t in f22.TASKS.values()
             if not t.data_source.num_input_examples("train")
             and not (t.source == "niv2" and t.name.removeprefix("niv2_") not in NIV2_FIXTURES)]
  assert not unknown
  assert f22.TASKS["dialog_qrecc"].rate() == 63_501


def test_export_metadata_and_shards_equal_the_whole(tmp_path):
  lines, parts = _sharded_export(tmp_path, SMALL_MIX, 30)
  assert len(lines) == 30 and collections.Counter(lines) == collections.Counter(parts[0] + parts[1])
  assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
  rows = [json.loads(line) for line in lines]
  assert collections.Counter(r["task"] for r in rows) == {
      "flan2022_cot_gsm8k_fs_opt": 15, "flan2022_niv2_task1289_trec_classification_zs_opt": 10,
      "flan2022_t0_rotten_tomatoes_zs_opt": 5}
  assert {"_task_name", "_template_idx", "_template_type", "_task_source"} <= set(rows[0])
  assert {r["_task_source"] for r in rows} == {"CoT", "NIv2", "T0"}
  assert {r["_template_type"] for r in rows} == {"zs_opt", "fs_opt"}


EMPTY_TASK = "test_flan2022_empty_task"
GAPPY_MIX = "test_flan2022_gappy_mix"  # SMALL_MIX's tasks around one that yields no rows
if GAPPY_MIX not in seqio.MixtureRegistry.names():
  from flan_jax.data import vocab as _vocab
  seqio.TaskRegistry.add(
      EMPTY_TASK, source=seqio.FunctionDataSource(
          lambda split, shuffle_files, seed=None: tf.data.Dataset.from_tensor_slices(
              {"inputs": tf.constant([], tf.string), "targets": tf.constant([], tf.string)}),
          splits=["train"]),
      preprocessors=[seqio.preprocessors.tokenize], output_features=_vocab.output_features())
  seqio.MixtureRegistry.add(GAPPY_MIX, [
      ("flan2022_cot_gsm8k_fs_opt", 3.0), (EMPTY_TASK, 2.0),
      ("flan2022_niv2_task1289_trec_classification_zs_opt", 2.0),
      ("flan2022_t0_rotten_tomatoes_zs_opt", 1.0)])


@pytest.mark.parametrize("shard", [None, (0, 2), (1, 2)])
def test_export_in_task_groups_equals_one_interleave(shard):
  """A mixture's export with at most ``live`` task pipelines at a time (groups through temporary
  files, merged back) writes the same lines in the same order as one interleave of all tasks,
  also where a task has no rows (it loses its turns). A shard holds whole tasks: exactly their
  lines of the unsharded export, in its order, and the other shard has the other tasks."""
  with no_network():
    whole = list(export_data.records(GAPPY_MIX, num_examples=40)[0])
    got = list(export_data.records(GAPPY_MIX, num_examples=40, shard=shard)[0])
    for live in (1, 2, 3):
      assert list(export_data.records(GAPPY_MIX, num_examples=40, shard=shard, live=live)[0]) == got
    other = shard and list(export_data.records(GAPPY_MIX, num_examples=40,
                                               shard=(1 - shard[0], 2))[0])
  tasks = collections.Counter(r["task"] for r in got)
  assert EMPTY_TASK not in tasks
  if not shard:
    assert got == whole and len(tasks) == 3
    return
  assert tasks and got == [r for r in whole if r["task"] in tasks]
  rest = {r["task"] for r in other}
  assert not rest & set(tasks) and len(got) + len(other) == len(whole)


@pytest.mark.slow
def test_flan2022_submix_shards_equal_the_whole(tmp_path):
  """The whole collection: NIv2 reads the fixture task file under every training task's name."""
  import shutil

  from flan_jax.tasks.flan2022 import niv2
  (tmp_path / "niv2" / "tasks").mkdir(parents=True)
  for name in niv2.train_tasks():
    shutil.copyfile(os.path.join(FIXTURES, "niv2", "tasks", "task1289_trec_classification.json"),
                    tmp_path / "niv2" / "tasks" / f"{name}.json")
  sources.set_data_dir("niv2", str(tmp_path / "niv2"))
  lines, parts = _sharded_export(tmp_path, mix.SUBMIX, 3000)
  assert collections.Counter(lines) == collections.Counter(parts[0] + parts[1])
  rows = [json.loads(line) for line in lines]
  owned = [{json.loads(line)["task"] for line in part} for part in parts]
  assert not owned[0] & owned[1]
  for part, tasks in zip(parts, owned, strict=True):  # whole tasks, in the whole's order
    assert part == [line for line, r in zip(lines, rows, strict=True) if r["task"] in tasks]
  assert {r["_task_source"] for r in rows} == {"Flan2021", "T0", "NIv2", "CoT", "Dialog"}
  assert len(lines) > 2500  # a few mock TFDS tasks filter all their random rows out


def test_tasks_use_a_small_shuffle_buffer():
  """A mixture fills every task's buffer before its first batch: 1,000 a task would hold ~1.9M
  rendered examples for flan2022_submix."""
  task = seqio.get_mixture_or_task("flan2022_cot_gsm8k_zs_opt")
  assert task.shuffle_buffer_size == f22.SHUFFLE_BUFFER == 128


def test_export_quotas_follow_rates():
  assert export_data.quotas([3.0, 1.0], 10) == [8, 2]
  assert sum(export_data.quotas([1.0, 1.0, 1.0], 10)) == 10
  # Whole tasks per shard, largest first to the least-loaded: loads 9+1 = 10 and 5+4 = 9.
  assert [export_data.shard_tasks([5, 9, 4, 1], i, 2) for i in range(2)] == [[1, 3], [0, 2]]


def test_names_register_lazily():
  assert registry.get("flan2022_submix") is seqio.get_mixture_or_task("flan2022_submix")
  assert "flan2022_cot_submix" in registry.list_mixtures("flan2022_*")


def test_check_sizes_compares_the_table_with_local_files(capsys):
  from flan_jax import cli
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["check-sizes", "--flan2022", "cot,niv2", "--data_dir", f"cot={FIXTURES}/cot",
              "--data_dir", f"niv2={FIXTURES}/niv2"])
  out = capsys.readouterr().out
  assert exit_info.value.code == 1  # the fixtures are smaller than the real datasets
  gsm8k = next(line for line in out.splitlines() if line.startswith("cot_gsm8k "))
  assert "table=7473 data=6 MISMATCH" in gsm8k
  trec = next(line for line in out.splitlines() if line.startswith("niv2_task1289_trec"))
  assert "table=None data=8 not in the table" in trec


def test_too_big_mixture_warns_before_building(monkeypatch, caplog):
  """flan2022_submix's ~1,940 live pipelines (~24 MB each, BENCHMARKS.md) do not fit 20 GB: the
  trainer says so and what to do instead of building for minutes into an out-of-memory kill."""
  from flan_jax.training import batches
  assert batches.available_memory_mb() > 0
  registry.get("flan2022_submix")
  monkeypatch.setattr(batches, "available_memory_mb", lambda: 20 * 1024.0)
  with caplog.at_level("WARNING"):
    message = batches.warn_if_too_big("flan2022_submix", use_cached=False)
  n = len(seqio.get_subtasks(seqio.get_mixture_or_task("flan2022_submix")))
  assert message and f"{n} uncached sub-tasks" in message and "register_exported" in message
  assert message in caplog.text
  assert batches.warn_if_too_big("flan2022_cot_submix", use_cached=False) is None
  assert batches.warn_if_too_big("flan2022_submix", use_cached=True) is None
  # Two data shards in one process: two pipelines per task.
  monkeypatch.setattr(batches, "available_memory_mb", lambda: 2 * 1024.0)
  assert batches.warn_if_too_big("flan2022_cot_submix", use_cached=False) is None
  assert batches.warn_if_too_big("flan2022_cot_submix", use_cached=False, pipelines=3)


def test_training_from_the_sharded_export(tmp_path):
  """export-data's parts train through one pipeline (flan_jax.data.exported): every line comes
  back once an epoch, tokenized as the original task tokenizes it, metadata kept; each of two
  data shards reads one part; the trainer's packed pipeline reads the task."""
  from flan_jax.data import exported
  from flan_jax.training import batches
  _, parts = _sharded_export(tmp_path, SMALL_MIX, 60)
  name = "test_flan2022_exported"
  if name not in seqio.TaskRegistry.names():
    exported.register_exported(name, str(tmp_path / "part*.jsonl"))
  task = seqio.get_mixture_or_task(name)
  rows = [json.loads(line) for part in parts for line in part]

  def epoch(shard=None):
    ds = task.get_dataset(LENGTHS, split="train", shuffle=False, num_epochs=1,
                          shard_info=shard and seqio.ShardInfo(*shard))
    return list(ds.as_numpy_iterator())

  got = epoch()
  key = lambda r: (r["inputs"], r["targets"], r["_task_name"], r["_template_type"])  # noqa: E731
  assert sorted(key({k: (v.decode() if isinstance(v, bytes) else v) for k, v in
                     (("inputs", e["inputs_pretokenized"]), ("targets", e["targets_pretokenized"]),
                      ("_task_name", e["_task_name"]), ("_template_type", e["_template_type"]))})
                for e in got) == sorted(map(key, rows))
  for e in got[:10]:
    assert list(e["inputs"]) == DEFAULT_VOCABULARY.encode(e["inputs_pretokenized"].decode()) + [1]
    assert list(e["targets"]) == DEFAULT_VOCABULARY.encode(e["targets_pretokenized"].decode()) + [1]
  assert {e["_task_source"].decode() for e in got} == {r["_task_source"] for r in rows}
  halves = [epoch((i, 2)) for i in range(2)]
  assert sorted(len(h) for h in halves) == sorted(len(p) for p in parts)
  cfg = batches.DataConfig(name, {"inputs": 256, "targets": 64}, batch_size=4)
  # Part 0 may hold only long few-shot prompts (whole tasks per part): look past it.
  some = list(batches.get_dataset(cfg).take(16).as_numpy_iterator())
  assert all(b["decoder_target_tokens"].shape == (4, 320) for b in some)
  assert max(b["decoder_segment_ids"].max() for b in some) > 1  # packed
