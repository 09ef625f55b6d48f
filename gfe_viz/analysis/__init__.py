"""The lessons' numerics: solver runs, stiffness, landscapes, latent metrics, problems with known
solutions and results discovery. Each function returns arrays or dataclasses; :mod:`gfe_viz.viz`
draws them."""
