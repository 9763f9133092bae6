"""Trust between the parts of vmknet: the controller's CA and mutual TLS (`pki`), engine
tickets (`tickets`, SEC-4) and the record of refused peers (`audit`)."""
