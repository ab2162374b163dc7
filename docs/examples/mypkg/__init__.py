"""The docs/extending.md example package: a filter and a source of your own."""
