# pad — common tasks. `make help` lists them.
GO      ?= go
BIN     ?= bin
FUZZTIME ?= 30

.PHONY: help build test run bench bench-gpu gpu-check gpu-bundle lint fuzz docker clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s '	'

build: ## build bin/pad (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/pad ./cmd/pad

test: ## run the tests (CPU; GPU tests skip without a GPU)
	$(GO) test ./...

run: build ## train the quickstart (embedded Fashion-MNIST sample, CPU)
	$(BIN)/pad train

bench: ## Go benchmarks: one training iteration, the GEMM, the loader
	$(GO) test ./phases -run '^$$' -bench Iteration -benchtime 10x
	$(GO) test ./internal/gemm -run '^$$' -bench . -benchtime 3x
	$(GO) test ./dataset -run '^$$' -bench Loader

bench-gpu: ## on a GPU machine: pad bench beside the PyTorch peer, side by side
	scripts/bench-gpu.sh

gpu-check: ## on a GPU machine: parity, memory and speed checks of the CUDA backend
	scripts/gpu-check.sh

gpu-bundle: ## build what gpu-check needs into .dev/ for a GPU machine without Go
	scripts/gpu-bundle.sh

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

fuzz: ## run every fuzz target for FUZZTIME seconds
	scripts/fuzz.sh $(FUZZTIME)

# ---- the figures of README's Results and Reliability sections ----
.PHONY: reproduce-mnist quickstart-figures gemm-rates crash-test

reproduce-mnist: ## one MNIST epoch at the paper's settings, probes, occlusion and latent metrics (~20 min on 2 cores)
	scripts/reproduce-mnist.sh

quickstart-figures: ## time `pad train` on the built-in sample and print its probe accuracy
	scripts/quickstart-figures.sh

gemm-rates: ## SGEMM GFLOP/s on the CPU backend's shapes, against gonum and the core's FP32 peak
	scripts/gemm-rates.sh

crash-test: ## SIGKILL/resume sequences (SEEDS) and the other failure tests, with their counts
	scripts/crash-test.sh

docker: ## build the container image (needs a Docker engine)
	docker build -f docker/Dockerfile -t pad:latest .

clean: ## remove build outputs
	rm -rf $(BIN)

