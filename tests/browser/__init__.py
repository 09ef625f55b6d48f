"""End-to-end tests of the notebooks in JupyterLab, in a real browser (Chromium driven by Playwright)."""
