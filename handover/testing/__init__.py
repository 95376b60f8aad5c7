"""The process and server harness the tests, the benchmarks and the demo share."""
