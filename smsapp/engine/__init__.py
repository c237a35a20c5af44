"""The sending engine: provider adapters, webhook signatures and (later) the send loop."""
