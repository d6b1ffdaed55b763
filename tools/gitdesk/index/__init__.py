"""The search index: a cache under .gitdesk/cache/ that is brought up to date from the files before every answer."""
