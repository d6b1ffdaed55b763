"""The published site: pure functions from a tracker to pages, and the MkDocs adapter."""
