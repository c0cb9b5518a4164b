"""Pure analysis of training curves (numpy/scipy only)."""
