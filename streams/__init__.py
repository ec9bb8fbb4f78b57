"""Stream processing: the faust app, its pure processors and its agents."""
