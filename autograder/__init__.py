"""Instructor-only: hidden tests, the nbgrader configuration and the build/grade pipeline.

Never shipped to students (DESIGN.md section 3).
"""
import sys

# jsonschema (imported by nbformat) builds an IRI grammar with lark when `rfc3987-syntax` is installed
# (jupyter-events pulls it in): 1.4 s in every worker and `course` process, for a string format that
# no notebook or nbgrader schema uses. Marking it absent makes jsonschema skip that one format check.
sys.modules.setdefault("rfc3987_syntax", None)
