// Nothing to provide: the core README's snippet runs as it is.
