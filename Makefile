# Two entry points, both safe on a brand-new machine (see README).
#   make demo   set up .venv, build the notebooks, grade the bundled samples, print grades
#   make test   set up .venv and run the test suite
#   make mutation  mutation score of the checks (cosmic-ray; on demand, not part of make test)
PYTHON ?= python3
VENV   ?= .venv
# Versions known to work; pyproject.toml declares ranges for everyone else.
TORCH_PINS = "torch==2.14.1" "torchvision==0.29.1"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet $(TORCH_PINS) -e ".[test]"
	touch $@

.PHONY: setup demo test mutation
setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/course demo

test: setup
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

mutation: setup
	$(VENV)/bin/python -m pip install --quiet -e ".[mutation]"
	$(VENV)/bin/python benchmarks/mutation_score.py
