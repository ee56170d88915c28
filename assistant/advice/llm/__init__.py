"""The LLM backend: a small ChatModel seam, litellm behind it, and the grounded planner."""
