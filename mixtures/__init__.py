"""flan_jax.mixtures: leave-one-cluster-out mixtures, eval mixtures and the paper's ablations.

Importing this package registers (``P`` = ``flan`` for the paper's datasets, ``demo`` for the
offline suite; ``c`` = a held-out cluster):

* ``P_heldout_c_train``: every other cluster's training tasks (minus the partner clusters FLAN
  also drops), examples-proportional with each dataset's rate capped at 3,000.
* ``P_heldout_c_eval`` (+ ``_{1,2,3,5,10,16}_shot`` with aliases ``_one_shot``/``_five_shot``/
  ``_multi_shot``, ``_no_options``): the per-template eval tasks of cluster c.
* ``P_heldout_c_eval_continuations``: the untuned baseline's tasks (continuation prompts where the
  dataset has them, else its eval tasks).
* ``P_heldout_c_{1,2,4,7}templates_train``: templates-per-dataset ablation.
* ``P_heldout_c_no_template_train`` / ``P_heldout_c_dataset_name_train`` (and
  ``P_heldout_c_dataset_name_eval``): the instruction ablations.
* ``flan_num_clusters_{1..7}_train`` + ``flan_num_clusters_eval``: the number-of-clusters
  ablation (held out: NLI, closed-book QA, commonsense).
* ``P_all_train``: every training task.
"""

from flan_jax.data import registry as _registry

with _registry.bulk_registration():
  from flan_jax.mixtures import flan  # noqa: F401
