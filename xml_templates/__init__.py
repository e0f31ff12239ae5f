"""XML skeletons of the domain, parsed with lxml and filled structurally."""
