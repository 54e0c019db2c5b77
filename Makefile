# The one test command (README, CI): every test, real lab services included, with -race.
GO ?= go

.PHONY: test lint build demo
test: lint
	$(GO) test -race -count=1 -timeout 18m ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

build:
	$(GO) build -o bin/decant ./cmd/decant

demo:
	$(GO) run ./cmd/decant demo
