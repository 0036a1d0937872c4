"""Reporting over run records (needs the `report` extra: pandas and matplotlib); see `build`."""
