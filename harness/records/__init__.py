"""The versioned run record that joins measuring and analysing: its schema and types, the one reader of
record files, host facts, the append-only store, and which records answer which question.

Runs on boards (it writes the records). Imports only the layers below it (common, models, scoring).
"""
