"""meterflow benchmarks: `make bench`. Ratios against baselines run in the same process."""
