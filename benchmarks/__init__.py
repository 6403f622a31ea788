"""MetaQore's benchmark harness: a seeded run generator and a runner that measures the gate."""
