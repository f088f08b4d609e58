"""Terminal UI: progress displays, the chat REPL, the rank UI and shared Rich renderables."""
