"""Parallelism: device meshes, partitioning rules, shardings and multi-host helpers."""
