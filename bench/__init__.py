"""Benchmark harness: Arctern against cp, rsync and rclone on the same data in the same run."""
