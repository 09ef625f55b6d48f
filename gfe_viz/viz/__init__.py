"""Figure and widget builders for the lessons: each returns a plotly figure or an ipywidgets view."""
