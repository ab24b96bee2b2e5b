"""Engine requests (filled in below)."""
