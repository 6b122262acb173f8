"""KV-cache serving statements and plans: cache.append, KvCacheAppendPlan, cache.save/load, sequences, the ragged decode example."""
