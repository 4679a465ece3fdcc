# The two Quickstart commands: `make demo` and `make test`. Each creates its own venv.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/comfyfab demo

# The whole suite: unit tests, and the integration suites on the embedded backend and on
# LocalStack + DynamoDB Local (installed on first use, started here, stopped afterwards).
BACKENDS ?= embedded,localstack

test: $(STAMP)
	@case "$(BACKENDS)" in *localstack*) $(BIN)/comfyfab emulator up --port 0 --dynamodb-port 0 >/dev/null;; esac
	$(BIN)/python -m pytest --backends $(BACKENDS) $(PYTEST_ARGS); rc=$$?; \
	  case "$(BACKENDS)" in *localstack*) $(BIN)/comfyfab emulator down >/dev/null;; esac; exit $$rc

bench: $(STAMP)
	$(BIN)/comfyfab bench pipeline

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
