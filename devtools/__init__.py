"""Developer tools: `make run`, the mail catcher, the gateway, the benchmarks."""
