"""Prompting: turn a question into what a model reads, and its output back into an answer.

- templates.py: the YAML template schema, its validation, and rendering as a base-model document
  prefix (text) or as chat messages (a list of {"role", "content"}).
- answers.py: answer extraction, normalisation, majority voting (self-consistency) and scoring.
- experiment.py: templates x checkpoints x cases -> scored, logged results (`gptkit prompt run`).

Templates and answers neither tokenize nor touch tensors: rendering produces text or messages,
and the tokenizer module turns those into token ids. Only experiment.py runs models, through
`textgen.generate` (imported when an experiment runs, so listing templates stays light).
"""
