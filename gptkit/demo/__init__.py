"""The demonstrations, kept apart from the library they demonstrate.

- `quickstart`: `gptkit quickstart`, the toy-world story end to end (tokenizer, base model,
  assistant, held-out accuracy, the prompt-technique table).
- `feedback`: its RLHF stage (`--feedback`): rank sampled chains by truth, DPO, compare.
- `evaluate`: held-out accuracy on toy-world tasks, the same figure for both.

Only the CLI imports from here; the library never does.
"""
