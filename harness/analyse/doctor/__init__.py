"""Diagnoses: why a number looks wrong, each suspected cause checked by correcting it and scoring again."""
