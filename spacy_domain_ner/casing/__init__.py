"""Case without signal: case forms of a corpus, truecasing, and the `case_restorer` component."""
