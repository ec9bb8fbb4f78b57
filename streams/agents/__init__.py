"""faust agents, one module each."""
