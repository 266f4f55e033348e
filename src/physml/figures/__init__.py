"""Named figures: each takes the artifacts it plots and returns a matplotlib Figure."""
