# pad — common tasks. `make help` lists them.
GO      ?= go
BIN     ?= bin
FUZZTIME ?= 30
REVS ?= e19b41c HEAD

.PHONY: help build test run bench bench-gpu gpu-check gpu-bundle cudasim lint fuzz docker clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s '	'

build: ## build bin/pad (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/pad ./cmd/pad

test: ## run the tests (GPU tests on the GPU, else on the simulated NVIDIA stack)
	$(GO) test ./...

cudasim: ## build the simulated libcuda/NVRTC/cuDNN/cuBLAS; the last line is the folder for PAD_CUDA_LIB_DIR
	@$(GO) run ./internal/cudasim/cmd/cudasim

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

cpu-compare: ## pad bench --device cpu of the binaries of REVS, alternated, beside the PyTorch CPU peer
	scripts/cpu-compare.sh $(REVS)

gemm-rates: ## SGEMM GFLOP/s on the CPU backend's shapes, against gonum and the core's FP32 peak
	scripts/gemm-rates.sh

crash-test: ## SIGKILL/resume sequences (SEEDS) and the other failure tests, with their counts
	scripts/crash-test.sh

docker: ## build the container image (needs a Docker engine)
	docker build -f docker/Dockerfile -t pad:latest .

clean: ## remove build outputs
	rm -rf $(BIN)

# ---- PyTorch parity (Debian's python3-torch, python3-numpy, python3-pil) ----
PYTHON ?= /usr/bin/python3
FIXTURES_SRC ?= $(if $(wildcard ../shared/fixtures/pad_step_c1.safetensors),../shared/fixtures,testdata/fixtures)
FIXTURES_OUT ?= runs/fixtures

.PHONY: fixtures fixtures-draw parity parity-short parity-draws seeds

fixtures: ## regenerate the golden fixtures with PyTorch (float64) into FIXTURES_OUT, checked against the committed ones
	$(PYTHON) scripts/pad_torch.py fixtures --replay $(FIXTURES_SRC) --out $(FIXTURES_OUT) --committed testdata/fixtures

fixtures-draw: ## make fresh fixtures from pad's own random draws (seed 1) into FIXTURES_OUT
	$(PYTHON) scripts/pad_torch.py fixtures --out $(FIXTURES_OUT)

parity: ## 300 iterations of pad vs PyTorch in float64, C=1 and C=3, three conditions (hours on 2 cores)
	scripts/parity.sh

parity-short: ## regenerate the committed 40-iteration PyTorch trajectory and replay it (go test ./tools/parity)
	$(PYTHON) scripts/pad_torch.py trajectory --out testdata/parity/pad-c3-40.safetensors --condition pad --channels 3 \
		--nf 4 --nz 8 --batch 8 --images 100 --iters 40 --every 40 --threads 1
	$(GO) test -count=1 ./tools/parity

parity-draws: ## regenerate testdata/parity/draws.safetensors (pad's random numbers drawn by the script)
	$(PYTHON) scripts/pad_torch.py draws --out testdata/parity/draws.safetensors
	$(GO) test -count=1 -run Draws ./tools/parity

seeds: ## one-epoch probe accuracy, two seeds, MNIST and Fashion-MNIST; five epochs on Fashion-MNIST (hours on 2 cores)
	scripts/seed-runs.sh
