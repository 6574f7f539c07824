"""Data: position targets, generated scenes and streets, objects on a grid, and the papers' real datasets."""
