"""Every FLAN dataset under tfds.testing.mock_data: templates, rendering, every variant kind."""

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from flan_jax.data import mixing, registry
from flan_jax.data import preprocessors as prep
from flan_jax.data import spec as ds
from tests.helpers import check_well_formed, variant_names

registry.ensure_registered()
FLAN = mixing.suite_specs("flan")
MOCK_EXAMPLES = 6
# Random mock text has no capitals or punctuation, which the text-formatting tasks (built from
# para_crawl/enda English) rightly filter out; give them real sentences instead.
SENTENCES = (
    "Mira lives in Oakton, near the river.",
    "The baker's bread was fresh; everyone loved it!",
    "Is this the road to Stonefield?",
    "Ada works as a teacher in Riverby.",
    "We met Hugo at the market on Monday.",
    "Yes, the parrot can talk: it says hello.",
)


def _rows(columns: dict):
  def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
    del self, split, decoders, read_config, kwargs
    return tf.data.Dataset.from_tensor_slices(columns)
  return as_dataset


# Datasets whose cleaning needs structure that random mock data lacks: realistic rows instead.
REALISTIC = {
    "para_crawl/enda": _rows({"en": list(SENTENCES), "da": list(SENTENCES)}),
    "ai2_arc": _rows({
        "id": ["q1", "q2"],
        "question": ["Which is a mammal?", "What melts ice?"],
        "choices": {"text": [["cat", "fish", "frog", "bird"], ["heat", "cold", "rock", "salt"]],
                    "label": [["A", "B", "C", "D"], ["1", "2", "3", "4"]]},
        "answerKey": ["A", "1"],
    }),
    # Flan 2022's additions (tests/test_flan2022): LAMBADA passages and UnifiedQA's AI2 science
    # questions as its TSVs print them ("\\n" literal), with rows its cleaning must drop.
    "lambada": _rows({"passage": [
        "she picked up the phone and called her oldest friend , rosa",
        "the dog would not stop barking until tom gave it a bone",
        "hello",
        "after the storm the whole village came out to look at the sea",
        "nobody in the house had slept , not even grandpa",
        "the last train left at midnight and we were not on it",
    ]}),
    "unified_qa": _rows({
        "input": [
            "which of these is a source of light? \\n (A) the moon (B) a candle flame (C) a mirror "
            "(D) a window",
            "what do plants need to make food? \\n (A) sunlight (B) sand (C) salt (D) smoke",
            "which is a gas at room temperature? \\n (A) iron (B) oxygen (C) wood (D) ice (E) gold",
            "what is the boiling point of water? \\n (A) 50 c (B) 75 c (C) 90 c (D) 120 c",
            "Which unit measures mass?\n(A) Meter (B) Liter (C) Gram (D) Second",
            "what pulls objects toward earth? \\n (A) gravity (B) friction (C) magnetism (D) wind",
        ],
        "output": ["a candle flame", "sunlight", "oxygen", "100 c", "gram", "gravity"],
    }),
}


@pytest.fixture(autouse=True)
def mock_tfds(request):
  """Mock TFDS data: 4 elements per sequence (ARC/HellaSwag keep 4-choice items) and small
  integers (labels in range)."""
  spec = getattr(request.node, "callspec", None) and request.node.callspec.params.get("spec")
  kwargs = {}
  for prefix, as_dataset in REALISTIC.items():
    if spec is not None and spec.source.tfds_dataset.name.startswith(prefix):
      kwargs["as_dataset_fn"] = as_dataset
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES, num_sub_examples=4, max_value=3,
                              **kwargs):
    yield


def test_all_paper_datasets_registered():
  assert len(FLAN) == 70  # 62 datasets as 70 configs
  assert len({s.cluster for s in FLAN}) == 12
  per_cluster = {c: len({s.name for s in FLAN if s.cluster == c}) for c in ds.CLUSTERS}
  assert per_cluster["summarization"] == 11 and per_cluster["translation"] == 8
  assert all(isinstance(s.source, ds.TfdsSource) for s in FLAN)


@pytest.mark.parametrize("spec", FLAN, ids=lambda s: s.name)
def test_templates(spec):
  templates = spec.templates
  assert len(templates) == 10
  assert len({(t.inputs, t.targets) for t in templates}) == 10
  assert sum(t.turned for t in templates) <= 3
  for t in templates:
    if spec.is_classification and not t.turned:
      assert t.inputs.endswith("{options_}") or t.options_free
    if t.turned:
      assert not t.has_options


@pytest.mark.parametrize("spec", FLAN, ids=lambda s: s.name)
def test_every_template_renders_from_preprocessed_fields(spec):
  builder = ds._Builder(spec)
  pool = prep.render_pool(builder.head, spec.templates)
  split = "test" if spec.eval_only else "train"
  rendered = list(pool(spec.source.get_dataset(split=split, shuffle=False)).as_numpy_iterator())
  assert rendered, f"{spec.name}: every mock example was filtered out"
  for ex in rendered:
    assert ex["inputs_all"].shape == (10,)
    for i, inputs in enumerate(ex["inputs_all"]):
      assert inputs.strip(), (spec.name, i)
      if spec.is_classification and spec.templates[i].has_options:
        assert inputs.decode().split("OPTIONS:\n- ")[1]  # block rendered with options


@pytest.mark.parametrize("spec", FLAN, ids=lambda s: s.name)
def test_each_variant_kind_yields_tokenized_examples(spec):
  names = variant_names(spec, every=False)
  for name in names:
    split = "test" if spec.eval_only or "_type_" in name else "train"
    check_well_formed(name, split)


@pytest.mark.slow
@pytest.mark.parametrize("spec", FLAN, ids=lambda s: s.name)
def test_every_registered_task(spec):
  split = "validation" if "validation" in spec.source.splits else "test"  # wsc273: test only
  for name in variant_names(spec, every=True):
    check_well_formed(name, split)
