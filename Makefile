# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EDGERT := $(VENV)/bin/edgert
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench fuzz reliability clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch 2.14.1 + torchvision 0.29.1: the OFA supernets import torchvision, and no
	# torchvision on this project's package index imports beside torch 2.13.0. Both
	# install from local disk (CUDA builds that run on CPU); the whole suite passes on them.
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet -e ".[export,qnn,train,ofa,app,speech,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(EDGERT) export zoo:digits --device auto --out demo-out/digits-auto --force
	$(EDGERT) export zoo:digits --device snapdragon-8-gen3-npu --out demo-out/digits-npu --force
	$(PY) apps/digits_demo.py demo-out/digits-auto demo-out/digits-npu
	$(EDGERT) export zoo:speller --device auto --out demo-out/speller-auto --force
	$(PY) apps/speller.py demo-out/speller-auto
	$(EDGERT) export zoo:speller-draft --device auto --out demo-out/speller-draft-auto --force
	$(EDGERT) export zoo:commands --device auto --out demo-out/commands-auto --force
	$(PY) apps/commands_demo.py demo-out/commands-auto
	@echo "open these bundles in the app: $(EDGERT) app demo-out"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The SSH profiling tests start a real sshd, the app's browser tests Debian's chromium and
# the speech tests speak with espeak-ng: installed here where apt-get can (as root), else
# those tests are skipped with the reason.
test: $(STAMP) lint
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
		|| (apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) \
		|| echo "chromium did not install: the app's browser tests will be skipped"
	@command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || [ "$$(id -u)" != 0 ] \
		|| ! command -v apt-get >/dev/null || (apt-get install -y -qq openssh-server >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null)) \
		|| echo "openssh-server did not install: the SSH profiling tests will be skipped"
	@command -v espeak-ng >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
		|| (apt-get install -y -qq espeak-ng >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null)) \
		|| echo "espeak-ng did not install: the tests on synthesized speech will be skipped"
	$(VENV)/bin/pytest -q

# The fuzzed loaders with many more cases than `make test` runs (several minutes).
fuzz: $(STAMP)
	EDGERT_FUZZ_EXAMPLES=5000 $(VENV)/bin/pytest -q tests/runtime/test_fuzz.py

# Fuzzed loaders, killed exports, threads and a long run's RSS in one table (minutes).
reliability: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) benchmarks/reliability.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/cnn.py
	$(PY) benchmarks/seq2seq.py
	$(PY) benchmarks/decoding.py
	$(PY) benchmarks/verify_drift.py
	$(PY) benchmarks/static_verify.py
	$(PY) benchmarks/ofa.py
	$(PY) benchmarks/dolphin.py
	$(PY) benchmarks/int8_portability.py
	$(PY) benchmarks/speller.py
	$(PY) benchmarks/speller_sizes.py
	$(PY) benchmarks/reliability.py

clean:
	rm -rf demo-out build dist *.egg-info .pytest_cache
