"""The bottom layer: the pipeline configuration, config-file parsing, errors and exit codes, lake paths.

Imports nothing from the rest of cdi but ``schemas``.
"""
