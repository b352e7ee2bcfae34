# Every target runs inside .venv, created on first use from the pinned requirements: `make demo` installs local
# mode's only (requirements-local.txt, about 200 MB), `make test` and the CDK targets everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCAL_STAMP := $(VENV)/.installed-local

.PHONY: demo test venv clean check-node

venv: $(STAMP)

$(STAMP): requirements-local.txt requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP) $(LOCAL_STAMP)

$(LOCAL_STAMP): requirements-local.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(LOCAL_STAMP)

## make demo: the whole pipeline on this machine (local mode, no AWS account, no Node.js): the README's first command
demo: $(LOCAL_STAMP)
	$(PY) scripts/demo.py

# The CDK libraries (jsii) run on Node.js: say so in one line, not in a jsii traceback.
NODE_MAJOR_MIN := 22
check-node:
	@command -v node >/dev/null 2>&1 || { echo "error: node (Node.js) not found; make test, synth and deploy need \
Node.js $(NODE_MAJOR_MIN) or later for the CDK libraries: install it (https://nodejs.org/en/download), then run \
the same command again. make demo needs no Node.js." >&2; exit 2; }
	@major=$$(node -p 'process.versions.node.split(".")[0]'); [ "$$major" -ge $(NODE_MAJOR_MIN) ] || echo \
"note: Node.js $$major is end-of-life; the CDK supports it for now, but use $(NODE_MAJOR_MIN) or later." >&2

## make test: the architecture's import contracts (pyproject.toml), then the whole test suite (no network, no AWS)
test: check-node $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

clean:
	rm -rf $(VENV) cdk.out .pytest_cache

# The CDK CLI runs the app with the venv's Python (cdk.json's "python3 app.py" is for users with an active venv).
CDK ?= npx --yes aws-cdk@2
CDK_APP := --app "$(PY) app.py"
# Extra CLI options, e.g. make deploy CDK_FLAGS="-c stack_name=RagDev"
CDK_FLAGS ?=

.PHONY: synth bootstrap deploy destroy lint layer-lock

## make synth: full synth with local bundling (pip fetches the layer's wheels), then checks the bundled boto3
synth: check-node $(STAMP)
	$(CDK) synth $(CDK_APP) --quiet $(CDK_FLAGS)
	$(PY) tests/stack/check_bundle.py cdk.out

## make bootstrap: the CDK's bootstrap stack, once per account and Region (of your AWS CLI credentials)
bootstrap: check-node $(STAMP)
	$(CDK) bootstrap $(CDK_APP) $(CDK_FLAGS)

## make deploy: deploy to the account and Region of your AWS CLI credentials (bootstrap once: make bootstrap)
deploy: check-node $(STAMP)
	$(CDK) deploy $(CDK_APP) --require-approval broadening $(CDK_FLAGS)

## make destroy: delete the stack (asks first); retain_data_on_destroy=true keeps the data resources
destroy: check-node $(STAMP)
	$(CDK) destroy $(CDK_APP) $(CDK_FLAGS)

## make layer-lock: after editing lambda_src/requirements.txt, re-pin the layer's whole closure with hashes
layer-lock: $(STAMP)
	$(PY) -m stacks.dependencies

## make lint: cfn-lint over the templates of the last synth (W3005 is how CDK writes DependsOn)
lint: synth
	$(VENV)/bin/cfn-lint --ignore-checks W3005 --regions us-east-1 us-west-2 eu-central-1 ap-southeast-2 -- cdk.out/*.template.json

.PHONY: bench mutants

## make mutants: break the indexer in twelve ways, one at a time, and check the tests catch each (a few minutes)
mutants: $(STAMP)
	$(PY) tests/mutants.py

## make bench: the benchmarks (a few minutes; bench/results/ gets the figures, the plot and the README section)
bench: $(STAMP)
	$(PY) bench/indexer_throughput.py --sweep
	$(PY) bench/indexer_throughput.py --clients botocore --batch-sizes 10,100,1000 --repeats 5 --baseline-budget 10
	$(PY) bench/freshness_local.py
	$(PY) bench/cold_start.py --against --runs 21
	$(PY) bench/report.py
