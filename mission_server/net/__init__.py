"""The network clients every adapter shares: one retrying HTTP transport and one
OpenAI-compatible chat client."""
