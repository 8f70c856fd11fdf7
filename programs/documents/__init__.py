"""Documents in: files, formats, long documents."""
