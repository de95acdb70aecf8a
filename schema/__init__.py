"""SQL migrations of the results store, installed as ``loadgen.schema``."""
