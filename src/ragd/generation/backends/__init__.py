"""LLM chat backends (OpenAI-compatible, Anthropic Messages) behind one small protocol."""
