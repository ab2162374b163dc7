"""Beam readers and writers: WARC/WET, JSONL/Parquet documents, MediaWiki dumps, Posts.xml, paper
archives, code trees, BigQuery; and file helpers for any Beam file system (gs://, s3://, local)."""
