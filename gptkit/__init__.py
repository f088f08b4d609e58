"""gptkit: build, watch and steer a small ChatGPT-like model end to end in your terminal.

Importing the package is cheap: nothing here imports torch. The public scripting API lives in
`gptkit.api` (load a checkpoint, render a template, generate, vote, run an experiment).
"""

__version__ = "0.1.0"
