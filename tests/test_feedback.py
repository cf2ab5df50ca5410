"""Feedback HTML works offline: markdown math becomes MathML and remote scripts are dropped; and a
worker that leaves no result is described by what it was doing."""
from __future__ import annotations

import json

from autograder.grade import killed_problem
from autograder.nbgrader_ext import make_offline, math_to_mathml


def test_math_becomes_mathml_and_the_rest_is_left_alone():
    md = ("Adam: $\\hat m_t = m_t / (1 - \\beta_1^t)$, and\n\n$$\\theta \\leftarrow \\theta - \\eta g$$\n\n"
          "costs $5 or $10, `x = \"$a$\"` in code, an escaped \\$ sign.")
    out = math_to_mathml(md)
    assert out.count('<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">') == 1
    assert out.count('display="block"') == 1 and "<mi>&#x003B8;</mi>" in out  # θ
    assert "costs $5 or $10" in out and '`x = "$a$"`' in out and "\\$ sign" in out


def test_unreadable_math_stays_as_written():
    assert math_to_mathml("see $\\left( x$ here") == "see $\\left( x$ here"


def test_remote_scripts_and_the_mathjax_config_are_removed():
    html = ('<head><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=x"> </script>\n'
            '<script type="text/x-mathjax-config">init_mathjax = 1;</script>\n<script>local()</script></head>')
    assert make_offline(html) == "<head><script>local()</script></head>"


def test_a_killed_worker_is_described_by_its_signal_and_cell(tmp_path):
    (tmp_path / "progress.json").write_text(json.dumps({"cell": 7}))
    assert killed_problem(-9, tmp_path) == ("the grading process was killed by signal 9 while running cell 7; "
                                            "nothing was graded")
    assert killed_problem(137, tmp_path).startswith("the grading process was killed by signal 9")  # via the sandbox
    (tmp_path / "progress.json").unlink()
    assert killed_problem(1, tmp_path) == ("the grading process ended with status 1 without a result before it ran "
                                           "any cell; nothing was graded")
