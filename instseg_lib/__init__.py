"""instseg_lib: the small library behind the proposal-free instance segmentation book.

Notebooks import from here and never copy code. See ``DESIGN.md`` in the shared folder
for the architecture; each module's docstring cites the paper section it implements.
"""

__version__ = "0.1.0"
