# crier: make help lists the targets.
SHELL := /bin/bash
export CRIER_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/crier?sslmode=disable
export CRIER_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: help services build run test vet fmt emulator

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

services: ## make sure PostgreSQL+PostGIS and Redis are running (installs them if missing)
	@bash scripts/services.sh

build: ## build bin/crier
	go build -o bin/crier ./cmd/crier

run: services build ## set up everything, start crier with the emulator and a demo, publish a demo post
	./bin/crier demo

test: services ## run the whole test suite with the race detector
	go vet ./...
	go test -race -count=1 -timeout 20m ./...

fmt: ## gofmt the tree
	gofmt -w .

emulator: build ## run the FCM/APNs emulator on its own (127.0.0.1:4010 FCM, :4011 APNs)
	./bin/crier emulator
