"""The management channel shared by controller, host agents and the CLI: framed JSON (`wire`)
and where each party keeps its files (`paths`)."""
