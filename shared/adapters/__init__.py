"""Adapters: the only code that does I/O (storage, queues, Dataverse, ACS, Graph, identity)."""
