"""S3 and S3-compatible object stores as collections (aiobotocore)."""
