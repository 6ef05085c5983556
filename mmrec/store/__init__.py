"""The LanceDB tables of a database: items, problems, checkpoints, interactions and users.

Nothing outside this package touches a raw LanceDB table.
"""
