"""Upper bounds on every count a user can set, in one place.

Each bound is far above any sensible value and far below what would exhaust memory or time
before the first result: a value past one is refused with a clear error before any work starts
(the CLI's option ranges, template validation and `SamplingParams` all read these). Must not
import anything: every layer may use it.
"""

MAX_SEED = 2**63 - 1  # seeds are stored in SQLite INTEGER columns (signed 64-bit)
MAX_NEW_TOKENS = 1 << 16  # tokens generated per answer (max_tokens)
MAX_SAMPLES = 256  # answers drawn per prompt (generate -n, prompt run --samples, self_consistency.samples)
MAX_TOP_K = 1 << 24
MAX_BATCH_SIZE = 4096  # sequences per training step (--batch-size)
MAX_GRAD_ACCUM = 4096
MAX_VOCAB_SIZE = 1 << 20  # tokens of a trained tokenizer (tiktoken's largest standard one has 200k)
MAX_BOOTSTRAP_SAMPLES = 100_000  # leaderboard resamples
MAX_ROWS = 2**63 - 1  # a row count or id given on the command line (SQLite's largest integer)
