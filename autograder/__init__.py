"""Instructor-only: hidden tests, the nbgrader configuration and the build/grade pipeline.

Never shipped to students (DESIGN.md section 3).
"""
