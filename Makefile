# `make demo` and `make test` set up .venv on first use (pinned requirements + the package, editable),
# and skip the set-up when nothing it depends on changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PKG := ros2_ws/src/gr00t_npu_node
STAMP := $(VENV)/.installed

.PHONY: demo test bench setup

setup: $(STAMP)

$(STAMP): requirements.txt $(PKG)/setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e $(PKG)
	touch $@

demo: $(STAMP)
	$(PY) -m gr00t_npu_node.demo $(if $(BAG),--bag $(BAG),)

test: $(STAMP)
	$(PY) -m pytest $(PKG)/tests -q

bench: $(STAMP)
	$(VENV)/bin/gr00t-npu-bench --preset tiny
