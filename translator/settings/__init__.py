"""Settings declared once as dataclass fields: the checks of their values and the command-line
options generated from them (used by training and by the apps)."""
