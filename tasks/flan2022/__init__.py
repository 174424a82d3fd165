"""flan_jax.tasks.flan2022: the Flan 2022 collection's tasks (Flan 2021 v2, T0-SF, NIv2, CoT,
dialog) in the four prompt modes. Importing this package registers them; it is imported only
by :mod:`flan_jax.mixtures.flan2022` (or any name starting ``flan2022_``), not by
``flan_jax.tasks``, so the 2021 registry stays as fast as before."""

from flan_jax.tasks.flan2022 import cot, dialog, flan2021, niv2, t0  # noqa: F401
