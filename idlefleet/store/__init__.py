"""Object storage for job data: the embedded S3-compatible store for labs and tests."""
