"""Datasets by id: hub ids and local files/repos through ``datasets``, column mapping, presets."""

from dlrl.data.sources import apply_columns, load_source, preset_records

__all__ = ["apply_columns", "load_source", "preset_records"]
