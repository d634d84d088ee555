"""Games the translator can work on: each states what it provides through `base.Game`."""
