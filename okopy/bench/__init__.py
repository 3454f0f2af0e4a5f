"""`okopy bench`: benchmarks that print ratios against a baseline measured in
the same run (these machines are shared and noisy), and write a Markdown
report with plots under docs/benchmarks/."""
