"""The core: the only modules that touch YAML (document), git (repo) and the worktree (tracker)."""
