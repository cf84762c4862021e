# Thin wrapper: the logic lives in scripts/. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Shared between clones, so CI and fresh clones reuse compiled dependencies.
# An already-set CARGO_TARGET_DIR wins.
CARGO_TARGET_DIR ?= $(HOME)/.cache/blacklist/target
export CARGO_TARGET_DIR

# debug | release, for `make up` (`PROFILE=release make up` or `make up PROFILE=release`)
PROFILE ?= debug

CARGO ?= cargo
# Extra arguments for the test runner or the bench binary: make test ARGS='-p api'
ARGS ?=

.PHONY: help up down clean test bench eval model train-model openapi fmt lint backup restore

help: ## List the targets
	@echo 'usage: make <target>   (CARGO_TARGET_DIR=$(CARGO_TARGET_DIR))'
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-8s %s\n", $$1, $$2}'

up: ## Start nats-server, Postgres, api, projector, janitor (and worker with WORKER_TOKEN) under .dev/
	@PROFILE='$(PROFILE)' bash scripts/dev-up.sh

down: ## Stop everything `make up` started
	@bash scripts/dev-down.sh

clean: ## make down, then remove .dev/ (local data, logs, secrets)
	@bash scripts/dev-clean.sh

backup: ## Copy the database (the source of truth) to backups/<time>/ or DIR=…
	@bash scripts/backup.sh $(DIR)

restore: ## Put a backup back (DIR=…; make down first; FORCE=1 over existing events)
	@bash scripts/restore.sh $(DIR)

test: ## Run the workspace tests (nextest if installed) against a real nats-server and Postgres
	@bash scripts/test.sh $(ARGS)

bench: ## Run the load benchmark (bench crate, release build) in the test environment
	@bash scripts/test-env.sh $(CARGO) run --release -p bench --bin bench $(if $(ARGS),-- $(ARGS))

eval: ## Scam-detection figures: the labelled call corpus, spoken and phone-band, through the worker
	@bash scripts/eval.sh $(ARGS)

train-model: ## Retrain the analyzer's learned check (worker/rules/en.model.json) from the tuning split and eval/dev/calls*.jsonl
	@cargo build -q -p worker --bin worker
	@"$(CARGO_TARGET_DIR)/debug/worker" train-model --threshold 0.7 --out worker/rules/en.model.json eval/calls/tuning.jsonl eval/dev/calls.jsonl eval/dev/calls2.jsonl eval/dev/calls3.jsonl eval/dev/calls4.jsonl eval/dev/calls5.jsonl eval/dev/calls6.jsonl

model: ## Fetch, verify and convert the speech model; prints its path (MODEL=base|tiny.en)
	@bash scripts/ensure-model.sh $(or $(MODEL),base)

openapi: ## Regenerate api/openapi.json, the snapshot of the contract the code declares (a test compares them)
	@UPDATE_OPENAPI=1 $(CARGO) test -q -p api --lib -- http::openapi

fmt: ## Format the code (cargo fmt)
	$(CARGO) fmt --all

lint: ## Check formatting and run clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
